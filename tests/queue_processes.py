"""Fixtures and helpers for queue tests that run real processes: workers (the management
command), a Celery worker, and the driver (tests/queue_driver.py) standing in for the app.

Those processes share a database of their own with each other (the test's own may be in
memory): a SQLite file, or a database created for the session on the test's PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection

from .conftest import API_KEY

ROOT = Path(__file__).resolve().parent.parent

needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL (set DATABASE_URL=postgres://…): SKIP LOCKED claims",
)


def postgres_url(name: str) -> str:
    params = connection.settings_dict
    auth = params["USER"] + (f":{params['PASSWORD']}" if params["PASSWORD"] else "")
    return f"postgres://{auth}@{params['HOST'] or 'localhost'}:{params['PORT'] or 5432}/{name}"


def postgres_admin(statement: str) -> None:
    import psycopg

    params = connection.settings_dict
    with psycopg.connect(
        dbname="postgres",
        user=params["USER"],
        password=params["PASSWORD"] or None,
        host=params["HOST"] or None,
        port=params["PORT"] or None,
        autocommit=True,
    ) as admin:
        admin.execute(statement)


@pytest.fixture(scope="session")
def process_database(tmp_path_factory) -> Iterator[str]:
    """The URL of a migrated database for the processes a test starts."""
    name = None
    if connection.vendor == "postgresql":
        name = f"smsgw_processes_{os.getpid()}"
        postgres_admin(f"DROP DATABASE IF EXISTS {name}")
        postgres_admin(f"CREATE DATABASE {name}")
        url = postgres_url(name)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('processes') / 'queue.sqlite3'}"
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--verbosity", "0"],
        env=process_env(url, "http://127.0.0.1:9"),
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    yield url
    if name is not None:
        postgres_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def fresh_process_database(process_database, running_simulator) -> str:
    """The processes' database, emptied, and the simulator reset."""
    running_simulator.reset()
    run_driver(process_env(process_database, running_simulator.base_url), "fresh")
    return process_database


def process_env(database_url: str, base_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.queue_settings",
        "DATABASE_URL": database_url,
        "SMSGW_BASE_URL": base_url,
        "SMSGW_API_KEY": API_KEY,
        **extra,
    }


def run_driver(env: dict[str, str], *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "tests.queue_driver", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else {}


def start_worker(env: dict[str, str], *args: str, log: Path) -> subprocess.Popen:
    """``manage.py smsgw_send_queued ARGS`` in a process of its own; output to ``log``."""
    with log.open("w") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "django", "smsgw_send_queued", *args],
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def wait_until(condition: Callable[[], bool], timeout: float, what: str, every=0.02) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def e164(indexes: range) -> list[str]:
    """The simulator's form (62…) of the numbers the driver gives these indexes."""
    return [f"62812{index:08d}" for index in indexes]


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
