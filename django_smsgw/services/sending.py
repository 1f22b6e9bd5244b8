"""Sending: persist every message first, call the backend, record the outcome, then raise.

A chunk is at most 1,000 messages (the provider's limit per request); ``send_bulk`` consumes its
iterable one chunk at a time, so memory does not grow with the number of messages.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .. import conf, db
from ..backends import BaseBackend, get_backend
from ..exceptions import GatewayError, GatewayRefused, MessageRefused, OutcomeUnknown
from ..models import SmsBatch, SmsMessage, Status
from ..protocol import codes
from ..protocol.payloads import OutgoingPacket
from ..protocol.replies import PacketResult, SendReply
from . import callbacks, outcomes
from .validation import (
    normalize_number,
    resolve_channel,
    resolve_queue,
    validate_message,
    validate_send_at,
)

logger = logging.getLogger("django_smsgw")

CHUNK_SIZE = codes.MAX_PACKETS_PER_REQUEST


def send_sms(
    number: str,
    message: str,
    *,
    channel: str | None = None,
    send_at: dt.datetime | None = None,
    queue: bool | None = None,
) -> SmsMessage:
    """Send one SMS; the stored ``SmsMessage`` with its outcome.

    Raises ``InvalidNumber``/``InvalidMessage`` before anything is stored, and a
    ``GatewayError`` (after recording it) when the message was not accepted.
    """
    channel = resolve_channel(channel)
    record = SmsMessage(
        number=normalize_number(number),
        message=validate_message(message),
        channel=channel,
        send_at=validate_send_at(send_at),
    )
    queued = resolve_queue(queue)
    backend = None if queued else get_backend()  # a configuration error stops us before storing
    record.status = Status.QUEUED if queued else Status.SENDING
    record.batch = SmsBatch.objects.create(kind=SmsBatch.Kind.SINGLE, channel=channel)
    error = store_and_submit(backend, record.batch, channel, [record])
    if error is not None:
        raise error
    if record.status == Status.QUEUED:
        from .queue import enqueue_for_celery  # here: queue.py imports this module

        enqueue_for_celery([record.pk])
    if record.status in (Status.QUEUED, Status.ACCEPTED):
        return record
    error_class = OutcomeUnknown if record.status == Status.UNKNOWN else MessageRefused
    raise error_class(
        record.error,
        code=record.sending_status,
        text=record.sending_status_text,
        messages=[record],
        batch=record.batch,
        response=record.provider_reply,
    )


def send_bulk(
    items: Iterable[Any],
    *,
    channel: str | None = None,
    send_at: dt.datetime | None = None,
    queue: bool | None = None,
) -> SmsBatch:
    """Send many SMS as one batch; the ``SmsBatch`` with its counts.

    ``items`` yields ``(number, message)`` pairs or dicts with ``number``, ``message`` and an
    optional ``send_at``. An invalid item is stored as ``rejected`` with the reason; a packet
    the provider refuses is recorded, not raised. A refused request or a transport failure is
    recorded on its chunk and then raised: the items after that chunk are left unconsumed in
    the iterable (the exception's ``batch`` tells what was stored).
    """
    channel = resolve_channel(channel)
    send_at = validate_send_at(send_at)
    queued = resolve_queue(queue)
    backend = None if queued else get_backend()
    batch = SmsBatch.objects.create(kind=SmsBatch.Kind.BULK, channel=channel)
    for chunk in chunked(items, CHUNK_SIZE):
        records = [build_record(batch, channel, item, send_at, queued) for item in chunk]
        error = store_and_submit(backend, batch, channel, records)
        if queued:
            from .queue import enqueue_for_celery  # here: queue.py imports this module

            enqueue_for_celery([record.pk for record in records if record.status == Status.QUEUED])
        if error is not None:
            batch.refresh_from_db()
            raise error
    batch.refresh_from_db()
    return batch


def store_and_submit(
    backend: BaseBackend | None, batch: SmsBatch, channel: str, records: list[SmsMessage]
) -> GatewayError | None:
    """Store a chunk (≤1,000 unsaved messages of ``batch``) and send those marked ``sending``.

    Messages already ``rejected`` or ``queued`` are stored and counted, not sent. Every message
    is stored before the request is made. Returns the exception to raise when the request as a
    whole failed (see ``deliver``), else None.
    """
    # Should this process die before the outcome is recorded, the lease lets the queue's
    # sweeper find these messages: their request may have gone out, so they become
    # ``unknown``, never re-sent. (Marking the request's start separately would cost a commit
    # per chunk.)
    now = timezone.now()
    lease = now + dt.timedelta(seconds=conf.get("QUEUE_LEASE"))
    for record in records:
        if record.status == Status.SENDING:
            record.request_started_at, record.lease_expires_at = now, lease
    # Batches count a message in flight as queued (as the queue does for what it claims), so
    # that whoever resolves it, its outcome or the sweeper, moves the count from there.
    counted = Counter(
        Status.QUEUED if record.status == Status.SENDING else record.status for record in records
    )
    with transaction.atomic(savepoint=False):  # one commit: the messages and their count
        db.insert_returning_ids(records)
        outcomes.record_on_batch(batch.pk, counted, total=len(records))
    ready = [record for record in records if record.status == Status.SENDING]
    return deliver(backend, channel, ready) if ready else None


def deliver(backend: BaseBackend, channel: str, records: list[SmsMessage]) -> GatewayError | None:
    """Send stored messages (all ``sending``, one channel, ≤1,000, counted by their batches as
    queued) in one request and record the outcome: the messages, their batches' counts and
    request logs, then the signal. Returns the exception to raise when the request as a whole
    failed, after everything is recorded; else None.
    """
    error, request = submit(backend, channel, records)
    pks = [record.pk for record in records]
    with transaction.atomic(savepoint=False):
        outcomes.record_delivery(records, dict.fromkeys(pks, Status.QUEUED), request)
    announce_delivery(records, dict.fromkeys(pks, Status.SENDING))
    if error is not None:
        error.messages = records
        error.batch = records[0].batch
        logger.warning("%d message(s) not sent: %s", len(records), error.reason)
    return error


def announce_delivery(records: list[SmsMessage], previous: Mapping[int, str]) -> None:
    """Once a delivery is recorded: the signal, then the delivery reports the provider sent
    before its reply was recorded, which are waiting for these sending ids."""
    outcomes.notify([(record, previous[record.pk], record.status) for record in records])
    started = [record.request_started_at for record in records if record.request_started_at]
    callbacks.adopt_orphan_reports(
        (record.sending_id for record in records if record.sending_id),
        received_since=min(started, default=None),
    )


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def build_record(
    batch: SmsBatch, channel: str, item: Any, send_at: dt.datetime | None, queued: bool
) -> SmsMessage:
    """An unsaved message for one ``send_bulk`` item; ``rejected`` with the reason if invalid."""
    number, text, item_send_at = unpack_item(item)
    record = db.instance(SmsMessage, batch_id=batch.pk, channel=channel, message=text)
    record.batch = batch
    try:
        record.number = normalize_number(number)
        validate_message(text)
        record.send_at = validate_send_at(item_send_at) if item_send_at else send_at
    except ValidationError as exc:
        record.number = str(number)[:20]
        record.message = str(text)
        record.status = Status.REJECTED
        record.error = "; ".join(exc.messages)
        return record
    record.status = Status.QUEUED if queued else Status.SENDING
    return record


def unpack_item(item: Any) -> tuple[Any, Any, Any]:
    if isinstance(item, dict):
        return item.get("number", ""), item.get("message", ""), item.get("send_at")
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return item[0], item[1], None
    return repr(item)[:20], f"not a (number, message) pair or a dict: {item!r:.200}", None


def submit(
    backend: BaseBackend, channel: str, records: list[SmsMessage]
) -> tuple[GatewayError | None, dict[str, Any]]:
    """Send ``records`` in one request; set each one's outcome (in memory only).

    Returns the exception for a request that failed as a whole (None if it was answered) and
    the entry for the batch's request log.
    """
    packets = [OutgoingPacket(r.number, r.message, r.send_at) for r in records]
    started_at = timezone.now()
    started = time.monotonic()
    error: GatewayError | None = None
    reply: SendReply | None = None
    try:
        reply = backend.send_packets(channel, packets)
    except GatewayError as exc:
        # ProviderUnreachable: provably never sent. OutcomeUnknown: may have been processed,
        # so never re-sent automatically. GatewayRefused here is an HTTP 3xx/4xx.
        status = Status.UNKNOWN if isinstance(exc, OutcomeUnknown) else Status.FAILED
        error = exc
        for record in records:
            record.status = status
            record.error = exc.reason
    else:
        if reply.global_code != codes.GLOBAL_SUCCESS:
            reason = "the provider refused the request: " + codes.describe(
                reply.global_code, reply.global_text, codes.GLOBAL_TEXTS
            )
            error = GatewayRefused(
                reason, code=reply.global_code, text=reply.global_text, response=reply.raw
            )
            status = codes.status_for_global(reply.global_code)
            for record in records:
                record.status = status
                record.error = reason
        else:
            match_packets(records, reply.packets)
    duration_ms = round((time.monotonic() - started) * 1000, 1)
    for record in records:
        record.request_started_at = started_at
        record.lease_expires_at = None  # the outcome is known: nobody holds the message now
    return error, log_entry(backend, channel, packets, started_at, duration_ms, reply, error)


def match_packets(records: list[SmsMessage], packets: list[PacketResult]) -> None:
    """Give each message its reply packet; packets come back in request order.

    A packet whose echoed number is not the message's, or a missing packet, leaves the message
    ``unknown``: guessing could pin another message's sending id on it.
    """
    if len(packets) != len(records):
        logger.warning("reply has %d packets for %d messages", len(packets), len(records))
    for index, record in enumerate(records):
        packet = packets[index] if index < len(packets) else None
        if packet is None:
            record.status = Status.UNKNOWN
            record.error = "the provider's reply had no packet for this message"
            continue
        record.provider_reply = packet.raw or None
        record.sending_status = packet.code
        record.sending_status_text = packet.text[:100]
        record.price = packet.price
        if packet.number and not same_number(packet.number, record.number):
            record.status = Status.UNKNOWN
            record.error = f"reply packet {index} is for {packet.number!r}, not this message"
            continue
        record.status = codes.status_for_packet(packet.code)
        if record.status == Status.ACCEPTED:
            record.sending_id = packet.sending_id
            if packet.sending_id is None:
                record.status = Status.UNKNOWN
                record.error = "the provider accepted the message but gave no sending id"
        elif record.status == Status.UNKNOWN:
            record.error = "the provider answered with an " + codes.describe(
                packet.code, packet.text, codes.PACKET_TEXTS
            )
        else:
            record.error = "the provider refused the message: " + codes.describe(
                packet.code, packet.text, codes.PACKET_TEXTS
            )


def same_number(echoed: str, e164: str) -> bool:
    """The provider echoes ``62…``; some servers echo what was sent (``0…`` or ``+62…``)."""
    digits = "".join(ch for ch in echoed if ch.isdigit())
    if digits.startswith("0"):
        digits = "62" + digits[1:]
    return digits == e164.lstrip("+")


def log_entry(
    backend: BaseBackend,
    channel: str,
    packets: list[OutgoingPacket],
    started_at: dt.datetime,
    duration_ms: float,
    reply: SendReply | None,
    error: GatewayError | None,
) -> dict[str, Any]:
    """One line of the batch's request log; the body summary is redacted (no API key)."""
    entry: dict[str, Any] = {
        "at": started_at.isoformat(),
        "channel": channel,
        "backend": type(backend).__name__,
        "messages": len(packets),
        "callbackurl": backend.callback_url,
        "duration_ms": duration_ms,
        "http_status": 200 if reply is not None else getattr(error, "http_status", None),
        "global_status": reply.global_code if reply is not None else None,
        "global_status_text": reply.global_text if reply is not None else "",
    }
    if error is not None:
        entry["error"] = f"{type(error).__name__}: {error.reason}"
    return entry
