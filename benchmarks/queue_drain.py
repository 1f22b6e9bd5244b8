"""Queue workers on PostgreSQL: 50,000 queued messages drained by 1, 2 and 4 worker processes
(``manage.py smsgw_send_queued``) sending to the simulator in a process of its own.

For each worker count: messages/second (from the first request's start to the last outcome
recorded, and wall-clock including the workers' start-up) and the number of duplicates the
simulator received, which must be 0. Creates the database smsgw_bench on the local PostgreSQL
(--database-url to change), migrates it and drops it at the end.

Run from the repository root: python benchmarks/queue_drain.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import API_KEY, ROOT, setup_django, simulator_process  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/smsgw_bench"


def admin(database_url: str, statement: str) -> None:
    """Run ``statement`` on the server's ``postgres`` database (CREATE/DROP DATABASE)."""
    import psycopg

    parts = urlsplit(database_url)
    with psycopg.connect(
        dbname="postgres",
        user=parts.username,
        password=parts.password,
        host=parts.hostname,
        port=parts.port,
        autocommit=True,
    ) as connection:
        connection.execute(statement)


def enqueue(count: int) -> float:
    from django_smsgw import send_bulk

    started = time.perf_counter()
    rows = (
        (f"0812{index:08d}", f"Halo pelanggan {index}, pesanan Anda dikirim.")
        for index in range(count)
    )
    batch = send_bulk(rows, queue=True)
    assert batch.queued_count == count, batch.queued_count
    return time.perf_counter() - started


def drain(workers: int, database_url: str, base_url: str) -> float:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.queue_settings",
        "DATABASE_URL": database_url,
        "SMSGW_BASE_URL": base_url,
        "SMSGW_API_KEY": API_KEY,
    }
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "django", "smsgw_send_queued"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(workers)
    ]
    outputs = [process.communicate(timeout=600)[0] for process in processes]
    elapsed = time.perf_counter() - started
    failed = [out for process, out in zip(processes, outputs, strict=True) if process.returncode]
    assert not failed, failed
    return elapsed


def measure(workers: int, count: int, database_url: str, base_url: str) -> dict:
    from django.core.management import call_command
    from django.db.models import Max, Min

    from django_smsgw.models import SmsMessage

    call_command("flush", interactive=False, verbosity=0)
    requests.post(f"{base_url}/_simulator/reset", timeout=10).raise_for_status()
    enqueue_seconds = enqueue(count)
    wall = drain(workers, database_url, base_url)

    statuses = Counter(SmsMessage.objects.values_list("status", flat=True))
    assert statuses == {"accepted": count}, statuses
    window = SmsMessage.objects.aggregate(first=Min("request_started_at"), last=Max("updated_at"))
    drain_seconds = (window["last"] - window["first"]).total_seconds()
    state = requests.get(f"{base_url}/_simulator/state", timeout=60).json()
    numbers = [message["number"] for message in state["sendingids"].values()]
    return {
        "workers": workers,
        "enqueue_seconds": enqueue_seconds,
        "drain_seconds": drain_seconds,
        "wall_seconds": wall,
        "rate": count / drain_seconds,
        "wall_rate": count / wall,
        "requests": state["send_requests"],
        "duplicates": len(numbers) - len(set(numbers)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    options = parser.parse_args()
    name = urlsplit(options.database_url).path.lstrip("/")

    admin(options.database_url, f"DROP DATABASE IF EXISTS {name}")
    admin(options.database_url, f"CREATE DATABASE {name}")
    try:
        with simulator_process() as base_url:
            setup_django(base_url, options.database_url)
            from django.db import connection

            results = [
                measure(workers, options.messages, options.database_url, base_url)
                for workers in options.workers
            ]
            server = connection.cursor().connection.info.server_version
            connection.close()
    finally:
        admin(options.database_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    print(
        f"queue drain of {options.messages:,} queued messages on PostgreSQL {server // 10000}, "
        f"{os.cpu_count()} CPU core(s), the simulator in a process of its own"
    )
    print(f"(enqueueing them with send_bulk(queue=True): {results[0]['enqueue_seconds']:.1f} s)")
    print("workers  requests  drain s  messages/s  wall s  messages/s (wall)  duplicates")
    base = results[0]["rate"]
    for r in results:
        print(
            f"{r['workers']:>7}  {r['requests']:>8}  {r['drain_seconds']:>7.2f}  "
            f"{r['rate']:>10,.0f}  {r['wall_seconds']:>6.2f}  {r['wall_rate']:>17,.0f}  "
            f"{r['duplicates']:>10}   x{r['rate'] / base:.2f}"
        )
    assert all(r["duplicates"] == 0 for r in results), "a message was sent twice"


if __name__ == "__main__":
    main()
