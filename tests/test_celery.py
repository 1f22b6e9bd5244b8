"""Celery (SPEC §7, the optional extra): tasks enqueued on commit carry ids; a task delivered
twice sends nothing twice; the periodic task picks up the rest; a real worker process with the
Redis broker sends queued messages to the simulator."""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
from collections import Counter

import pytest

pytest.importorskip("celery", reason="Celery is the optional extra django-smsgw[celery]")
pytest.importorskip("redis", reason="the Redis broker comes with django-smsgw[celery]")
pytest.register_assert_rewrite("tests.queue_processes")

import redis  # noqa: E402
from celery import Celery  # noqa: E402
from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from kombu.exceptions import OperationalError as BrokerError  # noqa: E402

from django_smsgw import send_bulk, send_sms, tasks  # noqa: E402
from django_smsgw.models import SmsMessage, Status  # noqa: E402
from django_smsgw.services.queue import claim_queued_messages  # noqa: E402

from .queue_processes import (  # noqa: E402
    ROOT,
    e164,
    process_env,
    run_driver,
    unique_name,
    wait_until,
)

pytest_plugins = ["tests.queue_processes"]  # its fixtures

REDIS_URL = "redis://127.0.0.1:6379/11"


@pytest.fixture
def celery_on(settings):
    settings.SMSGW = {**settings.SMSGW, "CELERY": True}


@pytest.fixture
def eager_celery():
    """A Celery app that runs tasks in this process, for the tests that need no broker."""
    from celery import current_app

    previous = current_app._get_current_object()
    app = Celery("smsgw-eager", set_as_current=True)
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield app
    previous.set_current()


class RecordingTask:
    """Stands in for a task: records what would have been enqueued."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple] = []
        self.error = error

    def delay(self, *args):
        if self.error is not None:
            raise self.error
        self.calls.append(args)

    def apply_async(self, args, eta=None):
        self.calls.append((args, eta))


@pytest.fixture
def enqueued(monkeypatch) -> RecordingTask:
    task = RecordingTask()
    monkeypatch.setattr(tasks, "send_queued_messages", task)
    return task


def queue_bulk(count: int, start: int = 0):
    rows = ((f"0812{start + i:08d}", f"Halo {i}") for i in range(count))
    return send_bulk(rows, queue=True)


# Enqueueing on commit ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_queue_true_enqueues_a_task_that_sends_once_the_transaction_commits(
    simulator, celery_on, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            message = send_sms("081234567890", "Kode OTP 123456", queue=True)
        assert simulator.state()["send_requests"] == 0  # not before the commit
    assert len(callbacks) == 1
    message.refresh_from_db()
    assert message.status == Status.ACCEPTED


@pytest.mark.django_db
def test_no_task_is_enqueued_when_the_transaction_rolls_back(
    celery_on, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            send_sms("081234567890", "Kode OTP 123456", queue=True)
            raise RuntimeError("the view failed")
    assert enqueued.calls == []
    assert not SmsMessage.objects.exists()


@pytest.mark.django_db
def test_without_the_celery_setting_queued_messages_wait_for_a_worker(
    enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        send_sms("081234567890", "Kode OTP 123456", queue=True)
    assert (callbacks, enqueued.calls) == ([], [])
    assert SmsMessage.objects.get().status == Status.QUEUED


@pytest.mark.django_db
def test_send_bulk_enqueues_one_task_per_chunk_carrying_only_ids(
    celery_on, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        batch = queue_bulk(2500)
    ids = list(batch.messages.order_by("pk").values_list("pk", flat=True))
    assert enqueued.calls == [(ids[:1000],), (ids[1000:2000],), (ids[2000:],)]
    assert all(isinstance(pk, int) for (chunk,) in enqueued.calls for pk in chunk)


@pytest.mark.django_db
def test_a_broker_failure_leaves_the_messages_queued_and_the_caller_unharmed(
    celery_on, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(
        tasks, "send_queued_messages", RecordingTask(BrokerError("Connection refused"))
    )
    with caplog.at_level(logging.WARNING, logger="django_smsgw"):
        with django_capture_on_commit_callbacks(execute=True):
            message = send_sms("081234567890", "Kode OTP 123456", queue=True)
    assert message.status == Status.QUEUED
    assert "could not enqueue the Celery task for 1 queued message(s)" in caplog.text


# The tasks --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_task_delivered_twice_sends_each_message_once(simulator, eager_celery):
    batch = queue_bulk(3)
    ids = list(batch.messages.values_list("pk", flat=True))
    first = tasks.send_queued_messages.apply(args=(ids,)).get()
    second = tasks.send_queued_messages.apply(args=(ids,)).get()
    assert (first["requests"], second["requests"]) == (1, 0)
    assert sorted(simulator.received_numbers()) == e164(range(3))


@pytest.mark.django_db
def test_the_task_comes_back_after_the_back_off_when_the_provider_is_unreachable(
    settings, eager_celery, monkeypatch
):
    settings.SMSGW = {
        **settings.SMSGW,
        "BACKEND": "django_smsgw.backends.http.HttpBackend",
        "BASE_URL": "http://127.0.0.1:9",  # the discard port: nothing listens
        "CONNECT_RETRIES": 0,
    }
    ids = list(queue_bulk(2).messages.values_list("pk", flat=True))
    again = RecordingTask()
    task = eager_celery.tasks["django_smsgw.send_queued_messages"]
    monkeypatch.setattr(task, "apply_async", again.apply_async)
    report = tasks.send_queued_messages.apply(args=(ids,)).get()
    [(args, eta)] = again.calls
    assert args == (ids,)
    assert eta == dt.datetime.fromisoformat(report["retry_at"])
    assert eta == min(SmsMessage.objects.values_list("next_attempt_at", flat=True))


@pytest.mark.django_db
def test_the_periodic_task_sweeps_expired_claims_and_sends_what_was_left_queued(
    simulator, eager_celery
):
    queue_bulk(2)
    claim_queued_messages("reguler")  # a worker that died before its request
    SmsMessage.objects.update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    queue_bulk(3, start=10)  # stored while no task could be enqueued
    result = tasks.send_due_messages.apply().get()
    assert (result["swept_requeued"], result["statuses"]) == (2, {Status.ACCEPTED: 5})
    assert Counter(SmsMessage.objects.values_list("status", flat=True)) == {Status.ACCEPTED: 5}


# A real worker ----------------------------------------------------------------------------------


@pytest.fixture
def redis_queue():
    """A Redis broker queue of the test's own; skips when Redis is unreachable."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        pytest.skip(f"Redis is unreachable at {REDIS_URL}: {exc}")
    name = unique_name("smsgw-tests")
    yield name
    for key in client.scan_iter(f"*{name}*"):
        client.delete(key)


def test_a_celery_worker_process_sends_queued_messages_once_each(
    fresh_process_database, running_simulator, redis_queue, tmp_path
):
    env = process_env(
        fresh_process_database,
        running_simulator.base_url,
        SMSGW_TEST_BROKER=REDIS_URL,
        SMSGW_TEST_CELERY_QUEUE=redis_queue,
    )
    log = tmp_path / "celery.log"
    with log.open("w") as output:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "--app",
                "tests.queue_celery_app",
                "worker",
                "--loglevel",
                "WARNING",
                "--concurrency",
                "2",
                "--hostname",
                f"{redis_queue}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        # 250 messages, each of their tasks delivered twice (one task per chunk, and again).
        run_driver(env, "enqueue", "250", "--celery", "--single", "--twice")
        wait_until(
            lambda: run_driver(env, "report")["statuses"] == {"accepted": 250},
            timeout=60,
            what="the worker to send and record 250 messages",
            every=0.5,
        )
        assert sorted(running_simulator.received_numbers()) == e164(range(250))

        # Stored without a task (CELERY off): the periodic task sends them.
        run_driver(env, "enqueue", "20", "--start", "1000")
        assert run_driver(env, "report")["statuses"] == {"accepted": 250, "queued": 20}
        run_driver(env, "send-due")
        wait_until(
            lambda: run_driver(env, "report")["statuses"] == {"accepted": 270},
            timeout=60,
            what="the periodic task to send the 20 left queued",
            every=0.5,
        )
        received = running_simulator.received_numbers()
        assert sorted(received) == e164(range(250)) + e164(range(1000, 1020))
    finally:
        worker.terminate()  # a warm shutdown
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        print(log.read_text())  # shown when the test fails
