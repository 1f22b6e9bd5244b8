"""resend_messages (SPEC §6): linked copies sent as new batches; the originals never change."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.forms.models import model_to_dict

from django_smsgw import send_bulk
from django_smsgw.models import SmsBatch, SmsMessage, Status
from django_smsgw.services.resend import resend_messages

pytestmark = pytest.mark.django_db


def stored_message(status: str = Status.DELIVERED, **fields) -> SmsMessage:
    """A message as the services would have left it, written directly."""
    channel = fields.pop("channel", "reguler")
    batch = SmsBatch.objects.create(channel=channel, total_count=1)
    values = {
        "number": "+6281234567890",
        "message": "Kode OTP Anda 123456",
        "sending_id": None,
        "price": Decimal("250"),
        "error": "",
        **fields,
    }
    return SmsMessage.objects.create(batch=batch, channel=channel, status=status, **values)


def snapshot(message: SmsMessage) -> dict:
    fresh = SmsMessage.objects.get(pk=message.pk)
    return {**model_to_dict(fresh), "updated_at": fresh.updated_at, "created_at": fresh.created_at}


def test_each_original_gets_one_linked_copy_sent_through_the_provider(simulator):
    originals = [
        stored_message(number="+6281234567890", message="Halo A", sending_id=900001),
        stored_message(number="+6285712345678", message="Halo B", sending_id=900002),
    ]
    [batch] = resend_messages(SmsMessage.objects.filter(pk__in=[m.pk for m in originals]))

    copies = list(SmsMessage.objects.filter(resent_from__isnull=False).order_by("resent_from"))
    assert [(c.resent_from_id, c.number, c.message, c.channel) for c in copies] == [
        (o.pk, o.number, o.message, o.channel) for o in originals
    ]
    assert all(c.batch_id == batch.pk and c.status == Status.ACCEPTED for c in copies)
    assert {c.sending_id for c in copies} == set(simulator.state()["sendingids"])
    assert batch.kind == SmsBatch.Kind.RESEND and batch.channel == "reguler"
    assert (batch.total_count, batch.accepted_count) == (2, 2)
    assert simulator.received_numbers() == ["6281234567890", "6285712345678"]


def test_the_originals_are_never_modified(simulator):
    original = stored_message(status=Status.FAILED, error="the provider refused the request")
    before = snapshot(original)
    resend_messages(SmsMessage.objects.filter(pk=original.pk))
    assert snapshot(original) == before
    assert SmsMessage.objects.count() == 2


@pytest.mark.parametrize("status", Status.values)
def test_a_message_is_resent_whatever_its_status(simulator, status):
    original = stored_message(status=status)
    resend_messages([original])
    copy = SmsMessage.objects.get(resent_from=original)
    assert copy.status == Status.ACCEPTED
    assert simulator.state()["packets_accepted"] == 1
    assert SmsMessage.objects.get(pk=original.pk).status == status


def test_a_copy_starts_afresh_and_goes_out_now(simulator):
    from django.utils import timezone

    original = stored_message(
        status=Status.UNDELIVERED,
        sending_id=777,
        delivery_status=4,
        delivery_status_text="Delivered Error",
        send_at=timezone.now(),
        attempts=3,
    )
    resend_messages([original])
    copy = SmsMessage.objects.get(resent_from=original)
    assert copy.sending_id not in (None, 777)
    assert (copy.delivery_status, copy.delivery_status_text, copy.send_at) == (None, "", None)
    assert copy.attempts == 0 and copy.error == ""


def test_a_selection_spanning_channels_becomes_one_batch_per_channel(simulator):
    otp = stored_message(channel="otp", number="+6281111111111")
    reguler = stored_message(channel="reguler", number="+6282222222222")
    masking = stored_message(channel="masking", number="+6283333333333")
    batches = resend_messages(SmsMessage.objects.all())

    assert [b.channel for b in batches] == ["reguler", "masking", "otp"]
    for batch, original in zip(batches, [reguler, masking, otp], strict=True):
        [copy] = batch.messages.all()
        assert copy.resent_from_id == original.pk and copy.channel == original.channel
        assert simulator.state()["sendingids"][copy.sending_id]["channel"] == original.channel


def test_more_than_1000_messages_go_in_requests_of_at_most_1000(simulator):
    batch = send_bulk([("081234567890", f"Halo {i}") for i in range(1001)])
    simulator.reset()
    [resend] = resend_messages(batch.messages.all())
    assert [entry["messages"] for entry in resend.requests] == [1000, 1]
    assert simulator.state()["send_requests"] == 2
    assert resend.total_count == resend.accepted_count == 1001


def test_a_refused_request_is_recorded_and_reported_not_raised(simulator):
    original = stored_message()
    simulator.inject("global", code=30)
    [batch] = resend_messages([original])

    copy = SmsMessage.objects.get(resent_from=original)
    assert copy.status == Status.REJECTED
    assert "30 ApiKey not register" in copy.error
    batch.refresh_from_db()
    assert (batch.total_count, batch.accepted_count, batch.rejected_count) == (1, 0, 1)
    assert "ApiKey not register" in batch.requests[0]["error"]
    assert SmsMessage.objects.get(pk=original.pk).status == Status.DELIVERED


def test_a_failed_chunk_does_not_stop_the_next(simulator):
    batch = send_bulk([("081234567890", f"Halo {i}") for i in range(1001)])
    simulator.reset()
    simulator.inject("global", code=40)  # the first request only
    [resend] = resend_messages(batch.messages.all())
    assert (resend.rejected_count, resend.accepted_count) == (1000, 1)
    assert ["error" in entry for entry in resend.requests] == [True, False]


def test_a_transport_failure_leaves_the_copies_unknown_without_raising(simulator):
    original = stored_message()
    simulator.inject("http500")
    [batch] = resend_messages([original])
    assert SmsMessage.objects.get(resent_from=original).status == Status.UNKNOWN
    assert batch.unknown_count == 1


def test_an_original_with_an_invalid_number_is_copied_rejected_and_not_sent(simulator):
    original = stored_message(status=Status.REJECTED, number="12345", error="not a number")
    [batch] = resend_messages([original])
    copy = SmsMessage.objects.get(resent_from=original)
    assert copy.status == Status.REJECTED and "12345" in copy.error
    assert simulator.state()["packets_received"] == 0
    assert (batch.total_count, batch.rejected_count) == (1, 1)


def test_copies_matching_the_selection_are_not_resent_again(outbox):
    # The admin passes its filtered changelist: "accepted" matches the new copies too.
    send_bulk([("081234567890", "Halo A"), ("085712345678", "Halo B")])
    outbox.clear()
    resend_messages(SmsMessage.objects.filter(status=Status.ACCEPTED))
    assert len(outbox) == 2
    assert SmsMessage.objects.count() == 4


def test_a_queryset_with_related_rows_selected_can_be_resent(outbox):
    # The changelist's queryset selects the batch too.
    send_bulk([("081234567890", "Halo")])
    resend_messages(SmsMessage.objects.select_related("batch"))
    assert SmsMessage.objects.filter(resent_from__isnull=False).count() == 1


def test_an_empty_selection_sends_nothing(outbox):
    assert resend_messages(SmsMessage.objects.none()) == []
    assert resend_messages([]) == []
    assert not SmsBatch.objects.exists() and outbox == []
