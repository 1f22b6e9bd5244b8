"""The queue (SPEC §7): claiming, leases, retries, balance pauses, the worker command.

The provider is the simulator over real HTTP; multi-process behaviour is in test_workers.py.
"""

from __future__ import annotations

import datetime as dt
import io
import socket
import sys
import threading
import time
from collections import Counter

import pytest
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection
from django.utils import timezone

from django_smsgw import send_bulk, send_sms
from django_smsgw.backends.http import HttpBackend
from django_smsgw.models import BalanceSnapshot, DeliveryReport, SmsBatch, SmsMessage, Status
from django_smsgw.protocol.replies import DeliveryUpdate
from django_smsgw.services import queue
from django_smsgw.services.callbacks import receive_reports
from django_smsgw.services.queue import (
    claim_by_conditional_update,
    claim_queued_messages,
    mark_request_started,
    retry_delay,
    run_worker,
    send_queued_messages,
    sweep_expired_leases,
)
from django_smsgw.simulator import Simulator

from .conftest import API_KEY

pytestmark = pytest.mark.django_db


@pytest.fixture
def unreachable(settings):
    """The provider's address refuses connections: requests provably never reach it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.SMSGW = {
        **settings.SMSGW,
        "BACKEND": "django_smsgw.backends.http.HttpBackend",
        "BASE_URL": f"http://127.0.0.1:{port}",
        "CONNECT_RETRIES": 0,
    }


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"0812{start + index:08d}" for index in range(count)]


def queue_bulk(count: int, start: int = 0, **kwargs) -> SmsBatch:
    return send_bulk(((n, f"Halo {n}") for n in numbers(count, start)), queue=True, **kwargs)


def statuses() -> Counter:
    return Counter(SmsMessage.objects.values_list("status", flat=True))


def received(simulator) -> list[str]:
    return simulator.received_numbers()


def set_queue_settings(settings, **values) -> None:
    settings.SMSGW = {**settings.SMSGW, **values}


# Queueing ---------------------------------------------------------------------------------------


def test_queued_messages_are_stored_and_nothing_is_sent_by_the_caller(simulator):
    queue_bulk(3)
    send_sms("081299999999", "Kode 1234", queue=True)
    assert statuses() == {Status.QUEUED: 4}
    assert simulator.state()["send_requests"] == 0


def test_the_queue_setting_queues_by_default(simulator, settings):
    set_queue_settings(settings, QUEUE=True)
    message = send_sms("081299999999", "Kode 1234")
    assert message.status == Status.QUEUED
    assert simulator.state()["send_requests"] == 0


# Draining ---------------------------------------------------------------------------------------


def test_a_worker_sends_every_due_message_once_and_records_the_outcome(simulator):
    batch = queue_bulk(2500)
    report = send_queued_messages()
    assert report.requests == 3
    assert report.statuses == {Status.ACCEPTED: 2500}
    assert statuses() == {Status.ACCEPTED: 2500}
    batch.refresh_from_db()
    assert (batch.queued_count, batch.accepted_count, len(batch.requests)) == (0, 2500, 3)
    assert sorted(received(simulator)) == sorted("62" + n[1:] for n in numbers(2500))
    assert SmsMessage.objects.filter(sending_id__isnull=True).count() == 0
    assert send_queued_messages().requests == 0


def test_each_request_carries_at_most_1000_messages_of_one_channel(simulator):
    reguler = queue_bulk(1200)
    otp = queue_bulk(5, start=5000, channel="otp")
    send_queued_messages()
    reguler.refresh_from_db()
    otp.refresh_from_db()
    assert [(r["channel"], r["messages"]) for r in reguler.requests] == [
        ("reguler", 1000),
        ("reguler", 200),
    ]
    assert [(r["channel"], r["messages"]) for r in otp.requests] == [("otp", 5)]


def test_messages_waiting_for_a_retry_are_not_claimed_but_scheduled_ones_are(simulator):
    later = timezone.now() + dt.timedelta(hours=2)
    scheduled = queue_bulk(1, send_at=later)
    waiting = queue_bulk(1, start=10)
    SmsMessage.objects.filter(batch=waiting).update(
        next_attempt_at=timezone.now() + dt.timedelta(hours=1)
    )
    send_queued_messages()
    assert SmsMessage.objects.get(batch=scheduled).status == Status.ACCEPTED  # provider holds it
    assert SmsMessage.objects.get(batch=waiting).status == Status.QUEUED
    assert simulator.state()["packets_accepted"] == 1


def test_a_chunk_is_claimed_sent_and_recorded_in_a_bounded_number_of_queries(
    simulator, django_assert_max_num_queries
):
    queue_bulk(1000)
    with django_assert_max_num_queries(13):
        report = send_queued_messages()
    assert report.statuses == {Status.ACCEPTED: 1000}


# Claiming ---------------------------------------------------------------------------------------


def test_a_claim_marks_messages_sending_under_a_lease_before_any_request(simulator, settings):
    set_queue_settings(settings, QUEUE_LEASE=120)
    queue_bulk(3)
    before = timezone.now()
    claim = claim_queued_messages("reguler")
    assert len(claim.messages) == 3
    for message in SmsMessage.objects.all():
        assert message.status == Status.SENDING
        assert message.request_started_at is None
        assert message.lease_expires_at == claim.lease
        assert before + dt.timedelta(seconds=120) <= message.lease_expires_at
        assert message.lease_expires_at < before + dt.timedelta(seconds=122)
    assert simulator.state()["send_requests"] == 0


def test_two_claims_never_share_a_message():
    queue_bulk(1500)
    first = claim_queued_messages("reguler")
    second = claim_queued_messages("reguler")
    assert (len(first.messages), len(second.messages)) == (1000, 500)
    assert not {m.pk for m in first.messages} & {m.pk for m in second.messages}
    assert claim_queued_messages("reguler") is None


def test_a_claim_of_given_ids_takes_only_those_still_queued(simulator):
    batch = queue_bulk(3)
    ids = list(batch.messages.order_by("pk").values_list("pk", flat=True))
    send_queued_messages(ids=ids[:1])
    claim = claim_queued_messages("reguler", ids=ids)
    assert sorted(m.pk for m in claim.messages) == ids[1:]


def test_the_conditional_update_claims_only_rows_still_queued(monkeypatch):
    """Without SKIP LOCKED, two workers may pick the same ids; the UPDATE decides."""
    batch = queue_bulk(3)
    ids = list(batch.messages.order_by("pk").values_list("pk", flat=True))
    claim_queued_messages("reguler", ids=ids[:1])  # another worker got the first one
    picks = iter([ids, []])
    monkeypatch.setattr(queue, "pick_candidates", lambda candidates, limit: next(picks))
    lease = timezone.now() + dt.timedelta(minutes=5)
    claimed = claim_by_conditional_update(
        SmsMessage.objects.filter(queue.due(timezone.now())),
        1000,
        {"status": Status.SENDING, "lease_expires_at": lease, "updated_at": timezone.now()},
    )
    assert sorted(m.pk for m in claimed) == ids[1:]


def test_a_worker_that_lost_every_picked_message_picks_again(monkeypatch):
    batch = queue_bulk(3)
    ids = list(batch.messages.order_by("pk").values_list("pk", flat=True))
    claim_queued_messages("reguler", ids=ids[:1])
    picks = iter([ids[:1], ids[1:]])
    monkeypatch.setattr(queue, "pick_candidates", lambda candidates, limit: next(picks))
    lease = timezone.now() + dt.timedelta(minutes=5)
    claimed = claim_by_conditional_update(
        SmsMessage.objects.filter(queue.due(timezone.now())),
        1000,
        {"status": Status.SENDING, "lease_expires_at": lease, "updated_at": timezone.now()},
    )
    assert sorted(m.pk for m in claimed) == ids[1:]


class ObservingBackend(HttpBackend):
    """Looks at the database while its request is in flight."""

    seen: list[dict] = []

    def send_packets(self, channel, packets):
        ObservingBackend.seen.append(
            {
                "in_transaction": connection.in_atomic_block,
                "rows": list(
                    SmsMessage.objects.values_list("status", "attempts", "request_started_at")
                ),
            }
        )
        return super().send_packets(channel, packets)


@pytest.mark.django_db(transaction=True)
def test_the_request_start_is_committed_before_the_request_and_no_transaction_is_open(
    simulator, settings
):
    set_queue_settings(settings, BACKEND="tests.test_queue.ObservingBackend")
    ObservingBackend.seen = []
    queue_bulk(3)
    send_queued_messages()
    [seen] = ObservingBackend.seen
    assert seen["in_transaction"] is False
    assert [(status, attempts) for status, attempts, _ in seen["rows"]] == [("sending", 1)] * 3
    assert all(started is not None for _, _, started in seen["rows"])
    assert statuses() == {Status.ACCEPTED: 3}


class EarlyReportBackend(HttpBackend):
    """The provider's delivery reports arrive before the worker has recorded its reply."""

    def send_packets(self, channel, packets):
        reply = super().send_packets(channel, packets)
        receive_reports(
            [DeliveryUpdate(p.sending_id, p.number, 3, "Delivered Success") for p in reply.packets]
        )
        return reply


def test_a_report_that_arrived_before_the_reply_was_recorded_is_applied(simulator, settings):
    set_queue_settings(settings, BACKEND="tests.test_queue.EarlyReportBackend")
    queue_bulk(3)
    send_queued_messages()
    assert statuses() == {Status.DELIVERED: 3}
    assert DeliveryReport.objects.filter(message__isnull=True).count() == 0


# Sweeping expired leases ------------------------------------------------------------------------


def test_an_expired_claim_whose_request_never_started_goes_back_to_the_queue(simulator):
    batch = queue_bulk(3)
    claim = claim_queued_messages("reguler")  # then the worker dies
    result = sweep_expired_leases(now=claim.lease + dt.timedelta(seconds=1))
    assert (result.requeued, result.unknown) == (3, 0)
    assert statuses() == {Status.QUEUED: 3}
    assert SmsMessage.objects.filter(lease_expires_at__isnull=False).count() == 0
    send_queued_messages()
    assert sorted(received(simulator)) == sorted("62" + n[1:] for n in numbers(3))
    batch.refresh_from_db()
    assert (batch.queued_count, batch.accepted_count) == (0, 3)


def test_an_expired_claim_whose_request_may_have_started_is_unknown_and_never_resent(
    simulator, status_changes, django_capture_on_commit_callbacks
):
    batch = queue_bulk(3)
    claim = claim_queued_messages("reguler")
    mark_request_started(claim)  # then the worker dies, maybe after its request
    with django_capture_on_commit_callbacks(execute=True):
        result = sweep_expired_leases(now=claim.lease + dt.timedelta(seconds=1))
    assert (result.requeued, result.unknown) == (0, 3)
    assert statuses() == {Status.UNKNOWN: 3}
    assert "may have been sent" in SmsMessage.objects.first().error
    batch.refresh_from_db()
    assert (batch.queued_count, batch.unknown_count) == (0, 3)
    assert sorted(status_changes) == [(m.pk, "queued", "unknown") for m in claim.messages]
    send_queued_messages()
    assert simulator.state()["send_requests"] == 0


def test_a_claim_within_its_lease_is_not_swept():
    queue_bulk(3)
    claim = claim_queued_messages("reguler")
    mark_request_started(claim)
    assert sweep_expired_leases() == queue.SweepResult(0, 0)
    assert statuses() == {Status.SENDING: 3}


class StallingBackend(HttpBackend):
    """A worker that stalls past its lease: a sweeper acts while the request is in flight."""

    def send_packets(self, channel, packets):
        sweep_expired_leases(now=timezone.now() + dt.timedelta(hours=1))
        return super().send_packets(channel, packets)


def test_a_worker_that_outlived_its_lease_still_records_the_providers_answer(
    simulator, settings, status_changes, django_capture_on_commit_callbacks
):
    set_queue_settings(settings, BACKEND="tests.test_queue.StallingBackend")
    batch = queue_bulk(3)
    with django_capture_on_commit_callbacks(execute=True):
        send_queued_messages()
    assert statuses() == {Status.ACCEPTED: 3}
    batch.refresh_from_db()
    assert (batch.queued_count, batch.unknown_count, batch.accepted_count) == (0, 0, 3)
    assert Counter((old, new) for _, old, new in status_changes) == {
        ("queued", "unknown"): 3,
        ("unknown", "accepted"): 3,
    }


# Retries ----------------------------------------------------------------------------------------


def test_a_request_that_never_reached_the_provider_is_retried_after_a_back_off(unreachable):
    batch = queue_bulk(2)
    before = timezone.now()
    report = send_queued_messages()
    assert report.unreachable is not None
    assert statuses() == {Status.QUEUED: 2}
    for message in SmsMessage.objects.all():
        assert message.attempts == 1
        assert before + dt.timedelta(seconds=15) <= message.next_attempt_at
        assert message.next_attempt_at <= timezone.now() + dt.timedelta(seconds=30)
        assert "attempt 1 of 5" in message.error
    batch.refresh_from_db()
    assert (batch.queued_count, batch.failed_count) == (2, 0)
    assert "ProviderUnreachable" in batch.requests[0]["error"]
    assert send_queued_messages().requests == 0  # not due yet


def test_a_message_fails_after_its_last_attempt(
    unreachable, settings, status_changes, django_capture_on_commit_callbacks
):
    set_queue_settings(settings, QUEUE_MAX_ATTEMPTS=2, QUEUE_RETRY_DELAY=0.01)
    batch = queue_bulk(1)
    with django_capture_on_commit_callbacks(execute=True):
        send_queued_messages()
        time.sleep(0.02)
        send_queued_messages()
    message = SmsMessage.objects.get()
    assert (message.status, message.attempts) == (Status.FAILED, 2)
    assert "gave up after 2 attempts" in message.error
    batch.refresh_from_db()
    assert (batch.queued_count, batch.failed_count, len(batch.requests)) == (0, 1, 2)
    assert status_changes == [(message.pk, "queued", "failed")]


def test_the_back_off_doubles_is_bounded_and_jittered(settings):
    set_queue_settings(settings, QUEUE_RETRY_DELAY=30, QUEUE_RETRY_MAX_DELAY=600)
    assert [retry_delay(n, jitter=1).total_seconds() for n in (1, 2, 3, 5, 6, 9)] == [
        30,
        60,
        120,
        480,
        600,
        600,
    ]
    assert retry_delay(30000, jitter=1).total_seconds() == 600
    samples = [retry_delay(2).total_seconds() for _ in range(200)]
    assert 30 <= min(samples) < max(samples) <= 60


def test_a_request_that_may_have_reached_the_provider_is_never_retried(simulator):
    queue_bulk(2)
    simulator.inject("drop")  # processed, then the connection closes without an answer
    report = send_queued_messages()
    assert report.statuses == {Status.UNKNOWN: 2}
    assert send_queued_messages().requests == 0
    assert len(received(simulator)) == 2


# Balance ----------------------------------------------------------------------------------------


def test_an_expired_balance_pauses_the_channel_and_keeps_every_message_queued(simulator):
    batch = queue_bulk(2500)
    simulator.inject("global", code=50)
    report = send_queued_messages()
    assert (report.requests, report.paused) == (1, {"reguler"})
    assert statuses() == {Status.QUEUED: 2500}
    refused = SmsMessage.objects.filter(next_attempt_at__isnull=False)
    assert refused.count() == 1000
    assert "50 Expired Balance" in refused.first().error
    batch.refresh_from_db()
    assert (batch.queued_count, batch.rejected_count) == (2500, 0)
    assert send_queued_messages().requests == 0  # paused: not even a balance check yet
    assert simulator.state()["requests"] == 1


def test_sending_resumes_when_a_balance_check_succeeds(simulator, settings):
    set_queue_settings(settings, QUEUE_BALANCE_RECHECK=0.2)
    queue_bulk(1500)
    simulator.inject("global", code=50)
    send_queued_messages()
    time.sleep(0.25)
    report = send_queued_messages()
    assert report.statuses == {Status.ACCEPTED: 1500}
    assert BalanceSnapshot.objects.get().ok
    assert len(set(received(simulator))) == len(received(simulator)) == 1500


def test_a_failed_balance_check_keeps_the_pause(simulator, settings):
    set_queue_settings(settings, QUEUE_BALANCE_RECHECK=0.2)
    queue_bulk(10)
    simulator.inject("global", code=50)
    simulator.inject("global", code=35, endpoint="balance")  # the provider's rate limit
    send_queued_messages()
    time.sleep(0.25)
    assert send_queued_messages().paused == {"reguler"}
    assert simulator.state()["send_requests"] == 1
    time.sleep(0.25)
    assert send_queued_messages().statuses == {Status.ACCEPTED: 10}


def test_minimum_balance_packets_stay_queued_and_the_accepted_ones_are_recorded(settings):
    with Simulator(api_key=API_KEY, balances={"reguler": 3 * 250}) as small:
        set_queue_settings(
            settings,
            BACKEND="django_smsgw.backends.http.HttpBackend",
            BASE_URL=small.base_url,
            QUEUE_BALANCE_RECHECK=0.2,
        )
        batch = queue_bulk(5)
        report = send_queued_messages()
        assert report.statuses == {Status.ACCEPTED: 3, Status.QUEUED: 2}
        assert report.paused == {"reguler"}
        kept = SmsMessage.objects.filter(status=Status.QUEUED)
        assert set(kept.values_list("sending_status", flat=True)) == {80}
        batch.refresh_from_db()
        assert (batch.accepted_count, batch.queued_count, batch.rejected_count) == (3, 2, 0)
        time.sleep(0.25)
        assert send_queued_messages().requests == 0  # the check says 0 left: still paused
        assert BalanceSnapshot.objects.get().balance == 0
        assert small.state()["send_requests"] == 1


def test_a_stored_check_showing_no_balance_pauses_until_a_new_check_succeeds(simulator, settings):
    set_queue_settings(settings, QUEUE_BALANCE_RECHECK=60)
    empty = BalanceSnapshot.objects.create(channel="reguler", global_status=10, balance=0)
    queue_bulk(3)
    assert send_queued_messages().paused == {"reguler"}
    assert simulator.state()["requests"] == 0
    BalanceSnapshot.objects.filter(pk=empty.pk).update(
        checked_at=timezone.now() - dt.timedelta(minutes=2)
    )
    assert send_queued_messages().statuses == {Status.ACCEPTED: 3}


def test_other_channels_keep_sending_while_one_is_paused(simulator):
    queue_bulk(3)
    queue_bulk(3, start=100, channel="otp")
    simulator.inject("global", code=50)
    report = send_queued_messages()
    assert report.paused == {"reguler"}
    assert Counter(SmsMessage.objects.values_list("channel", "status")) == {
        ("reguler", "queued"): 3,
        ("otp", "accepted"): 3,
    }


# The worker loop and the command ----------------------------------------------------------------


def test_the_command_sends_what_is_due_and_exits_0(simulator):
    queue_bulk(3)
    out = io.StringIO()
    call_command("smsgw_send_queued", stdout=out)
    assert out.getvalue() == "1 request(s): 3 accepted\n"
    assert statuses() == {Status.ACCEPTED: 3}


def test_the_command_sweeps_expired_claims_first(simulator):
    queue_bulk(3)
    claim_queued_messages("reguler")  # by a worker that died before its request
    SmsMessage.objects.update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    call_command("smsgw_send_queued", stdout=io.StringIO())
    assert statuses() == {Status.ACCEPTED: 3}


def test_the_command_says_in_one_line_when_the_provider_is_unreachable(unreachable):
    queue_bulk(3)
    with pytest.raises(CommandError) as caught:
        call_command("smsgw_send_queued", stdout=io.StringIO())
    assert caught.value.returncode == 3
    assert "the provider is unreachable" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_command_says_in_one_line_when_a_channel_is_paused(simulator):
    queue_bulk(3)
    simulator.inject("global", code=50)
    with pytest.raises(CommandError) as caught:
        call_command("smsgw_send_queued", stdout=io.StringIO())
    assert caught.value.returncode == 3
    assert str(caught.value) == (
        "reguler: paused for balance, 3 message(s) stay queued until a balance check succeeds"
    )


def test_the_command_reports_a_misconfiguration_in_one_line(settings):
    set_queue_settings(settings, BACKEND="django_smsgw.backends.http.HttpBackend", API_KEY="")
    with pytest.raises(CommandError) as caught:
        call_command("smsgw_send_queued")
    assert caught.value.returncode == 1
    assert "API_KEY" in str(caught.value) and "\n" not in str(caught.value)


def test_the_command_refuses_an_interval_that_is_not_positive():
    with pytest.raises(CommandError, match="not a positive number of seconds"):
        call_command("smsgw_send_queued", "--loop", "--interval", "0")


class StoppingBackend(HttpBackend):
    """Asks the worker to stop while its first request is in flight."""

    stop: threading.Event

    def send_packets(self, channel, packets):
        StoppingBackend.stop.set()
        return super().send_packets(channel, packets)


@pytest.mark.django_db(transaction=True)  # a worker runs in autocommit, between transactions
def test_the_worker_loop_stops_after_recording_the_chunk_in_hand(simulator, settings):
    set_queue_settings(settings, BACKEND="tests.test_queue.StoppingBackend")
    StoppingBackend.stop = threading.Event()
    queue_bulk(2500)
    run_worker(interval=0.01, stop=StoppingBackend.stop)
    assert statuses() == {Status.ACCEPTED: 1000, Status.QUEUED: 1500}


@pytest.mark.django_db(transaction=True)
def test_the_worker_loop_survives_a_database_error(simulator, monkeypatch):
    stop = threading.Event()
    errors = []
    passes = []
    sweeps = iter([OperationalError("server closed the connection"), None])

    def flaky_sweep():
        outcome = next(sweeps)
        if outcome is not None:
            raise outcome
        return queue.SweepResult()

    def on_pass(report):
        passes.append(report)
        stop.set()

    monkeypatch.setattr(queue, "sweep_expired_leases", flaky_sweep)
    queue_bulk(3)
    run_worker(interval=0.01, stop=stop, on_pass=on_pass, on_error=errors.append)
    assert [str(e) for e in errors] == ["server closed the connection"]
    assert passes[0].statuses == {Status.ACCEPTED: 3}


# Signals and checks -----------------------------------------------------------------------------


def test_messages_put_back_in_the_queue_fire_no_signal(
    simulator, status_changes, django_capture_on_commit_callbacks
):
    queue_bulk(3)
    simulator.inject("global", code=50)
    with django_capture_on_commit_callbacks(execute=True):
        send_queued_messages()
    assert status_changes == []


def test_the_signal_fires_once_per_sent_message(
    simulator, status_changes, django_capture_on_commit_callbacks
):
    queue_bulk(3)
    with django_capture_on_commit_callbacks(execute=True):
        send_queued_messages()
    assert Counter((old, new) for _, old, new in status_changes) == {("queued", "accepted"): 3}


def check_ids() -> list[str]:
    return [issue.id for issue in run_checks() if issue.id.startswith("smsgw.")]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"QUEUE_LEASE": 0}, "smsgw.E020"),
        ({"QUEUE_RETRY_DELAY": "30"}, "smsgw.E020"),
        ({"QUEUE_BALANCE_RECHECK": -1}, "smsgw.E020"),
        ({"QUEUE_MAX_ATTEMPTS": 0}, "smsgw.E021"),
        ({"QUEUE_MAX_ATTEMPTS": 2.5}, "smsgw.E021"),
    ],
)
def test_bad_queue_settings_are_reported_by_system_checks(settings, values, expected):
    set_queue_settings(settings, **values)
    assert expected in check_ids()


def test_a_lease_shorter_than_a_request_is_warned_about(settings):
    set_queue_settings(
        settings,
        BACKEND="django_smsgw.backends.http.HttpBackend",
        TIMEOUT=(5, 30),
        CONNECT_RETRIES=0,
        QUEUE_LEASE=30,
    )
    assert "smsgw.W020" in check_ids()
    set_queue_settings(settings, QUEUE_LEASE=60)
    assert "smsgw.W020" not in check_ids()


def test_celery_switched_on_without_celery_installed_is_an_error(settings, monkeypatch):
    monkeypatch.setitem(sys.modules, "celery", None)  # import celery -> ImportError
    set_queue_settings(settings, CELERY=True)
    assert "smsgw.E022" in check_ids()
