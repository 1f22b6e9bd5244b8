"""send_bulk through the simulator over HTTP, on SQLite.

Prints messages/second end to end for 20,000 messages (with Django's SQLite defaults, and with
WAL), database queries per 1,000 messages, and the peak memory growth while sending a 20,000-
and a 200,000-message generator, each in a fresh process.
Run from the repository root: python benchmarks/bulk_send.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, setup_django, simulator_process  # noqa: E402

THROUGHPUT_MESSAGES = 20_000
MEMORY_SIZES = (20_000, 200_000)


def rows(count: int):
    for index in range(count):
        yield (f"0812{index % 10**8:08d}", f"Halo pelanggan {index}, pesanan Anda dikirim.")


def throughput(label: str) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from django_smsgw import send_bulk

    send_bulk(rows(1000))  # warm up: connections, caches
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        batch = send_bulk(rows(THROUGHPUT_MESSAGES))
    elapsed = time.perf_counter() - started
    assert batch.accepted_count == THROUGHPUT_MESSAGES, batch.accepted_count
    per_thousand = len(queries) / (THROUGHPUT_MESSAGES / 1000)
    print(
        f"[{label}] {THROUGHPUT_MESSAGES:,} messages in {elapsed:.2f} s: "
        f"{THROUGHPUT_MESSAGES / elapsed:,.0f} messages/s end to end, "
        f"{len(batch.requests)} provider requests, "
        f"{per_thousand:.1f} database queries per 1,000 messages"
    )


def use_wal() -> None:
    """What SQLite recommends for applications: commits stop waiting for fsync."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")


def rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def memory_child(count: int) -> None:
    from django_smsgw import send_bulk

    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    before = rss_kib("VmRSS")
    batch = send_bulk(rows(count))
    assert batch.accepted_count == count
    print(json.dumps({"count": count, "growth_kib": rss_kib("VmHWM") - before}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memory", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.memory:
        setup_django(options.base_url)
        memory_child(options.memory)
        return
    with simulator_process() as base_url:
        setup_django(base_url)
        throughput("SQLite, Django defaults")
        use_wal()
        throughput("SQLite, WAL")
        growth = {}
        for count in MEMORY_SIZES:
            output = subprocess.run(
                [sys.executable, __file__, "--memory", str(count), "--base-url", base_url],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            growth[count] = json.loads(output.strip().splitlines()[-1])["growth_kib"]
            print(
                f"peak memory growth while sending a {count:,}-message generator: "
                f"{growth[count] / 1024:.1f} MiB"
            )
    small, large = (growth[count] for count in MEMORY_SIZES)
    print(
        f"{MEMORY_SIZES[1] // MEMORY_SIZES[0]}x the messages -> "
        f"{large / max(small, 1):.2f}x the peak memory growth"
    )


if __name__ == "__main__":
    main()
