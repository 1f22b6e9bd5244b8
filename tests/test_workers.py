"""Queue workers as real processes (``manage.py smsgw_send_queued``) on a shared database,
sending to the simulator over HTTP: scale-out, a killed worker, a stopped worker."""

from __future__ import annotations

import signal
import time

import pytest

pytest.register_assert_rewrite("tests.queue_processes")

from .queue_processes import (  # noqa: E402
    e164,
    needs_postgresql,
    process_env,
    run_driver,
    start_worker,
    wait_until,
)

pytest_plugins = ["tests.queue_processes"]  # its fixtures


@needs_postgresql
def test_four_workers_drain_20000_messages_and_send_each_exactly_once(
    fresh_process_database, running_simulator, tmp_path
):
    env = process_env(fresh_process_database, running_simulator.base_url)
    run_driver(env, "enqueue", "20000")
    logs = [tmp_path / f"worker{n}.log" for n in range(4)]
    workers = [start_worker(env, log=log) for log in logs]
    for worker in workers:
        worker.wait(timeout=150)
    outputs = [log.read_text() for log in logs]
    assert [worker.returncode for worker in workers] == [0] * 4, outputs

    received = running_simulator.received_numbers()
    assert len(received) == 20_000
    assert sorted(received) == e164(range(20_000))  # each number once: no duplicates
    report = run_driver(env, "report")
    assert report["statuses"] == {"accepted": 20_000}
    assert report["batch_counts"]["accepted"] == 20_000
    assert report["batch_counts"]["queued"] == 0
    requests = [int(out.split(" request(s)")[0]) for out in outputs if "request(s)" in out]
    assert sum(requests) == 20, outputs  # 20 chunks of 1,000 shared between the workers


def test_a_worker_killed_mid_chunk_leaves_no_message_unsent_and_unaccounted_for(
    fresh_process_database, running_simulator, tmp_path
):
    lease = 2.0
    env = process_env(
        fresh_process_database,
        running_simulator.base_url,
        SMSGW_TEST_QUEUE_LEASE=str(lease),
        SMSGW_TEST_READ_TIMEOUT="60",
    )
    run_driver(env, "enqueue", "3000")
    # The provider accepts the first chunk, then takes its time to answer: kill the worker then.
    running_simulator.inject("slow", seconds=30)
    worker = start_worker(env, log=tmp_path / "killed.log")
    wait_until(
        lambda: running_simulator.state()["packets_accepted"] >= 1000,
        timeout=30,
        what="the first chunk to reach the provider",
    )
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    killed_at = time.monotonic()

    report = run_driver(env, "report")
    # Every message is queued, or claimed under a lease with its request's start recorded.
    assert report["statuses"] == {"queued": 2000, "sending": 1000}
    assert report["sending_leased"] == report["sending_started"] == 1000

    time.sleep(max(0.0, lease + 1.2 - (time.monotonic() - killed_at)))  # the lease expires
    sweeper = start_worker(env, log=tmp_path / "sweeper.log")
    assert sweeper.wait(timeout=60) == 0, (tmp_path / "sweeper.log").read_text()

    report = run_driver(env, "report")
    assert report["statuses"] == {"unknown": 1000, "accepted": 2000}  # none left sending
    received = running_simulator.received_numbers()
    assert sorted(received) == e164(range(3000))  # the killed chunk was not sent again
    in_flight = sorted("+" + number for number in received[:1000])
    assert sorted(report["numbers"]["unknown"]) == in_flight
    assert report["batch_counts"] == {
        "total": 3000,
        "queued": 0,
        "accepted": 2000,
        "unknown": 1000,
        "rejected": 0,
        "failed": 0,
    }


def test_a_looping_worker_stops_on_sigterm_after_recording_the_chunk_in_hand(
    fresh_process_database, running_simulator, tmp_path
):
    env = process_env(fresh_process_database, running_simulator.base_url)
    run_driver(env, "enqueue", "2500")
    running_simulator.inject("slow", seconds=1.5)
    log = tmp_path / "loop.log"
    worker = start_worker(env, "--loop", "--interval", "0.2", log=log)
    wait_until(
        lambda: running_simulator.state()["packets_accepted"] >= 1000,
        timeout=30,
        what="the first chunk to reach the provider",
    )
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0, log.read_text()

    report = run_driver(env, "report")
    assert report["statuses"] == {"accepted": 1000, "queued": 1500}
    assert running_simulator.state()["send_requests"] == 1
    assert log.read_text() == "1 request(s): 1000 accepted\n"
