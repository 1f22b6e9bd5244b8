"""send_sms / send_bulk (SPEC §3) through the locmem backend and the simulator over HTTP."""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core import serializers
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from django_smsgw import send_bulk, send_sms
from django_smsgw.backends.locmem import LocmemBackend
from django_smsgw.exceptions import (
    GatewayError,
    GatewayRefused,
    InvalidChannel,
    InvalidMessage,
    InvalidNumber,
    InvalidSchedule,
    MessageRefused,
    OutcomeUnknown,
    ProviderUnreachable,
)
from django_smsgw.models import BalanceSnapshot, DeliveryReport, SmsBatch, SmsMessage, Status
from django_smsgw.protocol.replies import PacketResult
from django_smsgw.services.sending import match_packets
from django_smsgw.signals import message_status_changed

pytestmark = pytest.mark.django_db

JAKARTA = ZoneInfo("Asia/Jakarta")


@pytest.mark.parametrize(
    "typed",
    ["0812-3456-7890", "081234567890", "+62 812 3456 7890", "6281234567890", "(0812) 3456-7890"],
)
def test_send_sms_stores_the_number_in_e164_whatever_its_format(outbox, typed):
    message = send_sms(typed, "Kode OTP Anda 123456", channel="otp")
    assert message.number == "+6281234567890"
    assert SmsMessage.objects.get(pk=message.pk).number == "+6281234567890"
    assert [(m.channel, m.number) for m in outbox] == [("otp", "+6281234567890")]


def test_send_sms_returns_the_accepted_record_with_its_batch(outbox):
    message = send_sms("081234567890", "Halo")
    stored = SmsMessage.objects.get(pk=message.pk)
    assert stored.status == Status.ACCEPTED
    assert stored.sending_id == outbox[0].sending_id
    assert stored.channel == "reguler"  # DEFAULT_CHANNEL
    assert stored.batch.kind == SmsBatch.Kind.SINGLE
    assert (stored.batch.total_count, stored.batch.accepted_count) == (1, 1)


@pytest.mark.parametrize(
    "number",
    [
        "",
        "12345",
        "abc",
        "+1 202 555 0100",  # not Indonesian
        "021 3456789",  # a Jakarta landline: cannot receive SMS
        "0812",  # too short
        "08123456789012345",  # too long
        None,
        ["081234567890"],
    ],
)
def test_send_sms_rejects_a_bad_number_before_storing_or_sending(outbox, number):
    with pytest.raises(InvalidNumber) as caught:
        send_sms(number, "Halo")
    assert caught.value.messages[0]  # a readable reason
    assert not SmsMessage.objects.exists() and not SmsBatch.objects.exists()
    assert outbox == []


@pytest.mark.parametrize("text", ["", "   ", "x" * 481, None, 42])
def test_send_sms_rejects_a_bad_message_before_storing_or_sending(outbox, text):
    with pytest.raises(InvalidMessage):
        send_sms("081234567890", text)
    assert not SmsMessage.objects.exists()
    assert outbox == []


def test_a_message_of_480_characters_is_accepted(outbox):
    assert send_sms("081234567890", "x" * 480).status == Status.ACCEPTED


def test_invalid_number_and_message_are_validation_errors():
    from django.core.exceptions import ValidationError

    assert issubclass(InvalidNumber, ValidationError)
    assert issubclass(InvalidMessage, ValidationError)


def test_a_naive_send_at_is_refused(outbox):
    with pytest.raises(InvalidSchedule, match="aware"):
        send_sms("081234567890", "Halo", send_at=dt.datetime(2030, 5, 1, 9, 30))
    assert not SmsMessage.objects.exists()


def test_an_unknown_channel_is_refused(outbox):
    with pytest.raises(InvalidChannel, match="premium"):
        send_sms("081234567890", "Halo", channel="premium")
    assert not SmsMessage.objects.exists()


def test_a_missing_api_key_is_a_configuration_error_before_anything_is_stored(settings):
    settings.SMSGW = {"BACKEND": "django_smsgw.backends.http.HttpBackend", "BASE_URL": "http://x"}
    with pytest.raises(ImproperlyConfigured, match="API_KEY"):
        send_sms("081234567890", "Halo")
    with pytest.raises(ImproperlyConfigured):
        send_bulk([("081234567890", "Halo")])
    assert not SmsMessage.objects.exists() and not SmsBatch.objects.exists()


def test_queue_true_stores_queued_and_sends_nothing(outbox):
    message = send_sms("081234567890", "Halo", queue=True)
    batch = send_bulk([("081234567890", "A"), ("bad", "B")], queue=True)
    assert SmsMessage.objects.get(pk=message.pk).status == Status.QUEUED
    assert sorted(batch.messages.values_list("status", flat=True)) == ["queued", "rejected"]
    assert (batch.queued_count, batch.rejected_count, batch.total_count) == (1, 1, 2)
    assert outbox == []


def test_the_queue_setting_is_the_default_for_queue(outbox, settings):
    settings.SMSGW = {**settings.SMSGW, "QUEUE": True}
    assert send_sms("081234567890", "Halo").status == Status.QUEUED
    assert send_sms("081234567890", "Halo", queue=False).status == Status.ACCEPTED
    assert len(outbox) == 1


# --- against the simulator, over real HTTP ---------------------------------------------


def test_send_sms_through_the_provider_records_sending_id_and_price(simulator):
    message = send_sms("0812-3456-7890", "Kode OTP Anda 123456", channel="otp")
    stored = SmsMessage.objects.get(pk=message.pk)
    sent = simulator.state()["sendingids"][stored.sending_id]
    assert sent["number"] == "6281234567890"
    assert sent["message"] == "Kode OTP Anda 123456"
    assert sent["channel"] == "otp"
    assert stored.status == Status.ACCEPTED
    assert stored.price == Decimal(sent["price"])
    assert (stored.sending_status, stored.sending_status_text) == (10, "success")
    assert stored.provider_reply["packet"]["sendingid"] == stored.sending_id


def test_send_at_becomes_sendingdatetime_in_jakarta_time(simulator):
    send_at = dt.datetime(2030, 5, 1, 2, 30, tzinfo=dt.UTC)
    message = send_sms("081234567890", "Nanti", send_at=send_at)
    sent = simulator.state()["sendingids"][message.sending_id]
    assert sent["sendingdatetime"] == "2030-05-01 09:30:00"
    assert SmsMessage.objects.get(pk=message.pk).send_at == send_at


def test_the_message_can_be_sent_url_encoded(simulator, settings):
    settings.SMSGW = {**settings.SMSGW, "URLENCODE_MESSAGE": True}
    message = send_sms("081234567890", "Diskon 50% & gratis")
    assert simulator.state()["sendingids"][message.sending_id]["message"] == (
        "Diskon+50%25+%26+gratis"
    )
    assert SmsMessage.objects.get(pk=message.pk).message == "Diskon 50% & gratis"


@pytest.mark.parametrize(
    ("code", "status"),
    [(60, Status.REJECTED), (70, Status.REJECTED), (80, Status.REJECTED), (90, Status.FAILED)],
)
def test_send_sms_raises_when_the_provider_refuses_its_packet(simulator, code, status):
    simulator.inject("packet", code=code)
    with pytest.raises(MessageRefused) as caught:
        send_sms("081234567890", "Halo")
    stored = SmsMessage.objects.get()
    assert caught.value.code == code
    assert caught.value.messages[0].pk == stored.pk
    assert stored.status == status
    assert stored.sending_status == code and stored.sending_id is None
    assert f"refused the message: {code}" in stored.error


def test_an_unknown_packet_code_leaves_the_message_unknown(simulator):
    simulator.inject("packet", code=77)
    with pytest.raises(OutcomeUnknown):
        send_sms("081234567890", "Halo")
    stored = SmsMessage.objects.get()
    assert stored.status == Status.UNKNOWN
    assert "unknown code 77" in stored.error


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (20, Status.REJECTED),
        (30, Status.REJECTED),
        (40, Status.REJECTED),
        (50, Status.REJECTED),
        (55, Status.REJECTED),
        (25, Status.FAILED),
    ],
)
def test_a_refused_request_is_recorded_then_raised(simulator, code, status):
    simulator.inject("global", code=code)
    with pytest.raises(GatewayRefused) as caught:
        send_sms("081234567890", "Halo")
    stored = SmsMessage.objects.get()
    assert caught.value.code == code
    assert stored.status == status
    assert f"refused the request: {code}" in stored.error or "unknown code 25" in stored.error
    entry = stored.batch.requests[0]
    assert entry["global_status"] == code and entry["http_status"] == 200


def test_the_real_provider_answers_wrong_key_with_code_30(simulator, settings):
    settings.SMSGW = {**settings.SMSGW, "API_KEY": "wrong-key"}
    with pytest.raises(GatewayRefused, match="30 ApiKey not register"):
        send_sms("081234567890", "Halo")
    assert SmsMessage.objects.get().status == Status.REJECTED


@pytest.mark.parametrize(
    ("fault", "params", "processed"),
    [
        ("http500", {}, 0),
        ("garbage", {}, 1),
        ("slow", {"seconds": 3}, 1),  # read timeout is 2 s in the fixture
        ("drop", {}, 1),
    ],
)
def test_a_reply_we_cannot_trust_leaves_the_message_unknown_and_never_resends(
    simulator, fault, params, processed
):
    simulator.inject(fault, **params)
    with pytest.raises(OutcomeUnknown) as caught:
        send_sms("081234567890", "Halo")
    stored = SmsMessage.objects.get()
    assert stored.status == Status.UNKNOWN
    assert stored.error
    assert caught.value.messages[0].pk == stored.pk
    state = simulator.state()
    assert state["send_requests"] == 1  # never re-sent automatically
    assert state["packets_accepted"] == processed


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_is_retried_then_failed(settings, caplog):
    settings.SMSGW = {
        **settings.SMSGW,
        "BACKEND": "django_smsgw.backends.http.HttpBackend",
        "BASE_URL": f"http://127.0.0.1:{closed_port()}",
        "CONNECT_RETRIES": 2,
    }
    with caplog.at_level(logging.WARNING, logger="urllib3"):
        with pytest.raises(ProviderUnreachable):
            send_sms("081234567890", "Halo")
    retries = [r for r in caplog.records if r.name.startswith("urllib3") and "Retrying" in r.msg]
    assert len(retries) == 2
    stored = SmsMessage.objects.get()
    assert stored.status == Status.FAILED
    assert "could not connect" in stored.error


def test_an_unresolvable_host_fails_without_being_unknown(settings):
    settings.SMSGW = {
        **settings.SMSGW,
        "BACKEND": "django_smsgw.backends.http.HttpBackend",
        "BASE_URL": "http://smsgw-provider.invalid",
        "CONNECT_RETRIES": 0,
    }
    with pytest.raises(ProviderUnreachable):
        send_sms("081234567890", "Halo")
    assert SmsMessage.objects.get().status == Status.FAILED


def test_a_connect_timeout_is_provably_not_sent(settings):
    # A listener whose accept queue is full drops new connection attempts: a real connect
    # timeout on loopback.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        filler = socket.create_connection(server.getsockname(), timeout=1)
        settings.SMSGW = {
            **settings.SMSGW,
            "BACKEND": "django_smsgw.backends.http.HttpBackend",
            "BASE_URL": "http://{}:{}".format(*server.getsockname()),
            "TIMEOUT": (0.3, 5),
            "CONNECT_RETRIES": 1,
        }
        with pytest.raises(ProviderUnreachable, match="could not connect"):
            send_sms("081234567890", "Halo")
        filler.close()
    assert SmsMessage.objects.get().status == Status.FAILED


def test_a_4xx_from_the_server_fails_the_message(simulator, settings):
    settings.SMSGW = {**settings.SMSGW, "BASE_URL": simulator.base_url + "/wrong-prefix"}
    with pytest.raises(GatewayRefused, match="HTTP 404") as caught:
        send_sms("081234567890", "Halo")
    assert caught.value.http_status == 404
    assert SmsMessage.objects.get().status == Status.FAILED


def test_the_api_key_appears_nowhere(settings, caplog):
    from django_smsgw import check_balance
    from django_smsgw.simulator import Simulator

    secret = "very-secret-api-key-0123456789"
    errors = []
    with Simulator(api_key=secret) as provider, caplog.at_level(logging.DEBUG):
        settings.SMSGW = {
            **settings.SMSGW,
            "API_KEY": secret,
            "BASE_URL": provider.base_url,
            "BACKEND": "django_smsgw.backends.http.HttpBackend",
        }
        for fault in (None, "garbage", "http500", "global"):
            if fault:
                provider.inject(fault, **({"code": 30} if fault == "global" else {}))
            try:
                send_bulk([("081234567890", "Halo"), ("nope", "x")])
            except GatewayError as exc:
                errors.append(str(exc) + repr(exc.response))
        check_balance()
    dump = "".join(
        serializers.serialize("json", model.objects.all())
        for model in (SmsMessage, SmsBatch, DeliveryReport, BalanceSnapshot)
    )
    assert SmsMessage.objects.filter(status=Status.ACCEPTED).count() == 1
    assert len(errors) == 3
    assert secret not in dump
    assert secret not in caplog.text
    assert all(secret not in text for text in errors)


# --- send_bulk ------------------------------------------------------------------------------


def rows(count: int, prefix: str = "0812"):
    return [(f"{prefix}{index:08d}", f"Halo {index}") for index in range(count)]


def count_queries(function) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as context:
        function()
    return len(context)


def test_bulk_of_2500_makes_3_requests_and_a_constant_number_of_queries_per_chunk(
    simulator, django_assert_max_num_queries
):
    # Per chunk: insert, batch counts, outcome update, batch log (lock + update), waiting
    # reports, and the savepoint pair of the test's own transaction; plus the batch itself
    # and its final refresh.
    with django_assert_max_num_queries(2 + 3 * 8):
        batch = send_bulk(rows(2500))
    assert simulator.state()["send_requests"] == 3
    assert simulator.state()["packets_accepted"] == 2500
    assert (batch.total_count, batch.accepted_count) == (2500, 2500)
    assert len(batch.requests) == 3
    assert [entry["messages"] for entry in batch.requests] == [1000, 1000, 500]
    assert SmsMessage.objects.filter(status=Status.ACCEPTED).count() == 2500


def test_queries_grow_with_chunks_not_with_messages(simulator):
    # Two queries per call (create the batch, refresh it at the end), the rest per chunk.
    one_chunk = count_queries(lambda: send_bulk(rows(1, "0813")))
    assert count_queries(lambda: send_bulk(rows(1000, "0814"))) == one_chunk
    assert count_queries(lambda: send_bulk(rows(3000, "0815"))) == 2 + 3 * (one_chunk - 2)


def test_bulk_matches_each_packet_to_its_message(simulator):
    batch = send_bulk(rows(1500))
    sent = simulator.state()["sendingids"]
    for message in batch.messages.all():
        assert sent[message.sending_id]["number"] == message.number.lstrip("+")
        assert sent[message.sending_id]["message"] == message.message


def test_bulk_accepts_pairs_dicts_and_generators_with_per_item_send_at(simulator):
    later = dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=JAKARTA)
    items = (
        item
        for item in [
            ("081234567890", "pair"),
            {"number": "+6285712345678", "message": "dict"},
            {"number": "085712345679", "message": "scheduled", "send_at": later},
        ]
    )
    batch = send_bulk(items, channel="masking")
    assert batch.accepted_count == 3
    scheduled = batch.messages.get(message="scheduled")
    assert simulator.state()["sendingids"][scheduled.sending_id]["sendingdatetime"] == (
        "2031-01-02 03:04:05"
    )
    assert {m.channel for m in batch.messages.all()} == {"masking"}


def test_invalid_items_are_stored_rejected_and_do_not_stop_the_others(simulator):
    batch = send_bulk(
        [
            ("081234567890", "ok"),
            ("12", "bad number"),
            ("081234567891", ""),
            "not a pair",
            {"message": "no number"},
            ("081234567892", "x" * 481),
        ]
    )
    assert (batch.total_count, batch.accepted_count, batch.rejected_count) == (6, 1, 5)
    rejected = batch.messages.filter(status=Status.REJECTED)
    assert rejected.count() == 5
    assert all(message.error for message in rejected)
    assert rejected.get(number="12").error.startswith("'12' is not")
    assert simulator.state()["packets_received"] == 1


def test_packet_refusals_in_bulk_are_recorded_not_raised(simulator):
    simulator.inject("packet", code=80)
    batch = send_bulk(rows(3))
    assert batch.rejected_count == 3
    assert set(batch.messages.values_list("sending_status", flat=True)) == {80}


def failing_from_second_chunk(simulator, fault, **params):
    """2,500 items; reading item 1,000 (after chunk 1 was sent) arms a fault for chunk 2."""
    for index, row in enumerate(rows(2500)):
        if index == 1000:
            simulator.inject(fault, **params)
        yield row


def test_a_refused_chunk_is_recorded_raised_and_leaves_the_rest_unconsumed(simulator):
    items = failing_from_second_chunk(simulator, "global", code=30)
    with pytest.raises(GatewayRefused) as caught:
        send_bulk(items)
    batch = SmsBatch.objects.get(pk=caught.value.batch.pk)
    assert (batch.total_count, batch.accepted_count, batch.rejected_count) == (2000, 1000, 1000)
    assert len(caught.value.messages) == 1000
    assert {m.status for m in caught.value.messages} == {Status.REJECTED}
    assert next(items)[1] == "Halo 2000"  # read one chunk at a time: the rest is still there
    assert simulator.state()["packets_accepted"] == 1000


def test_a_transport_failure_midway_keeps_what_was_sent(simulator):
    with pytest.raises(OutcomeUnknown) as caught:
        send_bulk(failing_from_second_chunk(simulator, "http500"))
    batch = SmsBatch.objects.get(pk=caught.value.batch.pk)
    assert (batch.accepted_count, batch.unknown_count) == (1000, 1000)
    assert [entry["http_status"] for entry in batch.requests] == [200, 500]
    assert simulator.state()["send_requests"] == 2


def test_quirky_replies_are_understood(settings):
    from django_smsgw.simulator import Simulator

    with Simulator(api_key="k", quirky=True) as quirky:
        settings.SMSGW = {
            **settings.SMSGW,
            "API_KEY": "k",
            "BASE_URL": quirky.base_url,
            "BACKEND": "django_smsgw.backends.http.HttpBackend",
        }
        batches = [send_bulk(rows(5)) for _ in range(4)]
    assert all(batch.accepted_count == 5 for batch in batches)
    assert SmsMessage.objects.filter(sending_id__isnull=True).count() == 0


def packet(number: str, sending_id: int = 1, code: int = 10) -> PacketResult:
    return PacketResult(number=number, sending_id=sending_id, code=code, text="", price=None)


def test_a_packet_for_another_number_leaves_the_message_unknown():
    records = [SmsMessage(number="+6281234567890"), SmsMessage(number="+6281234567891")]
    match_packets(records, [packet("6281234567890", 5), packet("6289999999999", 6)])
    assert records[0].status == Status.ACCEPTED and records[0].sending_id == 5
    assert records[1].status == Status.UNKNOWN and records[1].sending_id is None
    assert "6289999999999" in records[1].error


def test_a_missing_packet_leaves_the_message_unknown():
    records = [SmsMessage(number="+6281234567890"), SmsMessage(number="+6281234567891")]
    match_packets(records, [packet("081234567890", 5)])  # echoed in the form we could send
    assert records[0].status == Status.ACCEPTED
    assert records[1].status == Status.UNKNOWN
    assert "no packet" in records[1].error


def test_an_accepted_packet_without_sending_id_is_unknown():
    records = [SmsMessage(number="+6281234567890")]
    match_packets(records, [packet("6281234567890", None)])
    assert records[0].status == Status.UNKNOWN


# --- the status signal -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_signal_fires_once_per_message_after_commit(outbox, status_changes):
    with transaction.atomic():
        batch = send_bulk(rows(3) + [("bad", "x")])
        assert status_changes == []  # not before the commit
    ids = sorted(batch.messages.filter(status=Status.ACCEPTED).values_list("pk", flat=True))
    assert sorted(status_changes) == [(pk, "sending", "accepted") for pk in ids]


@pytest.mark.django_db(transaction=True)
def test_a_failing_receiver_does_not_break_sending(outbox, caplog):
    def broken(**kwargs):
        raise RuntimeError("receiver bug")

    message_status_changed.connect(broken)
    try:
        message = send_sms("081234567890", "Halo")
    finally:
        message_status_changed.disconnect(broken)
    assert message.status == Status.ACCEPTED
    assert "receiver bug" in caplog.text


def test_the_batch_log_records_each_request(simulator):
    batch = send_bulk(rows(2))
    (entry,) = batch.requests
    assert entry["messages"] == 2
    assert entry["http_status"] == 200 and entry["global_status"] == 10
    assert entry["duration_ms"] >= 0
    assert "apikey" not in json.dumps(entry)
    assert SmsBatch.objects.get(pk=batch.pk).requests == batch.requests


class CrashingBackend(LocmemBackend):
    """Stands in for a process that dies while its request is in flight."""

    def send_packets(self, channel, packets):
        raise SystemExit("killed mid-request")


def test_a_sender_that_dies_mid_request_leaves_messages_the_sweeper_marks_unknown(settings):
    from django_smsgw.services.queue import sweep_expired_leases

    settings.SMSGW = {**settings.SMSGW, "BACKEND": f"{__name__}.CrashingBackend"}
    with pytest.raises(SystemExit):
        send_bulk(rows(3))
    stuck = SmsMessage.objects.all()
    assert {m.status for m in stuck} == {Status.SENDING}
    assert all(m.lease_expires_at and m.request_started_at for m in stuck)
    sweep_expired_leases(
        now=timezone.now() + dt.timedelta(seconds=settings.SMSGW.get("QUEUE_LEASE", 300) + 1)
    )
    assert {m.status for m in SmsMessage.objects.all()} == {Status.UNKNOWN}


def test_a_recorded_outcome_releases_the_lease(outbox):
    message = send_sms("081234567890", "Halo")
    stored = SmsMessage.objects.get(pk=message.pk)
    assert stored.lease_expires_at is None and stored.request_started_at is not None


def test_the_fast_constructor_makes_the_same_message_as_the_model():
    from django_smsgw import db

    fast = db.instance(SmsMessage, batch_id=7, channel="otp", number="+6281234567890")
    slow = SmsMessage(batch_id=7, channel="otp", number="+6281234567890")
    fields = [field.attname for field in SmsMessage._meta.concrete_fields]
    assert [getattr(fast, f) for f in fields] == [getattr(slow, f) for f in fields]
    assert fast._state.adding and fast.pk is None
