"""Shared set-up for the benchmarks: Django on a throw-away SQLite file, the simulator in a
process of its own (so it uses the second core, as a real provider would be elsewhere)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "bench-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def simulator_process(balance: int = 10**12):
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "django_smsgw.simulator",
            "--port",
            str(port),
            "--api-key",
            API_KEY,
            "--balance",
            str(balance),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            with contextlib.suppress(requests.ConnectionError):
                requests.get(f"{base_url}/_simulator/state", timeout=1)
                break
            time.sleep(0.05)
        yield base_url
    finally:
        process.terminate()
        process.wait(10)


def setup_django(base_url: str, database_url: str | None = None) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    if database_url is None:
        database_url = f"sqlite:///{tempfile.mkdtemp(prefix='smsgw-bench-')}/bench.sqlite3"
    os.environ["DATABASE_URL"] = database_url
    import django
    from django.conf import settings

    django.setup()
    settings.SMSGW = {
        "API_KEY": API_KEY,
        "BASE_URL": base_url,
        "BACKEND": "django_smsgw.backends.http.HttpBackend",
        "CALLBACK_SECRET": "bench",
    }
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
