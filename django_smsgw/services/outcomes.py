"""Recording what happened to messages, and telling the project about it."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from django.db import transaction
from django.db.models import F

from .. import db
from ..models import SmsBatch, SmsMessage, Status
from ..signals import message_status_changed

logger = logging.getLogger("django_smsgw")

# What a send outcome writes on a message.
OUTCOME_FIELDS = [
    "status",
    "sending_id",
    "sending_status",
    "sending_status_text",
    "price",
    "error",
    "provider_reply",
    "request_started_at",
    "lease_expires_at",
    "updated_at",
]

# Which batch counter each status of a submission counts towards.
BATCH_COUNTERS = {
    Status.QUEUED: "queued_count",
    Status.ACCEPTED: "accepted_count",
    Status.REJECTED: "rejected_count",
    Status.FAILED: "failed_count",
    Status.UNKNOWN: "unknown_count",
}

StatusChange = tuple[SmsMessage, str, str]


def record_delivery(
    records: list[SmsMessage],
    previous: Mapping[int, str],
    request: dict | None,
    *,
    fields: Sequence[str] = OUTCOME_FIELDS,
    batch_ids: Iterable[int] = (),
) -> None:
    """Within the caller's transaction: write each message's ``fields``, move its batch's
    counts from ``previous[pk]`` to its status, and log ``request`` on every batch involved
    (those of ``records`` and ``batch_ids``), in id order so concurrent workers never
    deadlock."""
    db.update_fields(records, fields)
    by_batch: dict[int, Counter] = {batch_id: Counter() for batch_id in batch_ids}
    for record in records:
        delta = by_batch.setdefault(record.batch_id, Counter())
        delta[record.status] += 1
        delta[previous[record.pk]] -= 1
    for batch_id in sorted(by_batch):
        record_on_batch(batch_id, by_batch[batch_id], request=request)


def record_on_batch(
    batch_id: int, delta: Counter, *, total: int = 0, request: dict | None = None
) -> None:
    """Move the batch's counts by ``delta`` (status -> change) and log its provider request."""
    changes = {
        BATCH_COUNTERS[status]: F(BATCH_COUNTERS[status]) + count
        for status, count in delta.items()
        if status in BATCH_COUNTERS and count
    }
    if total:
        changes["total_count"] = F("total_count") + total
    with transaction.atomic(savepoint=False):
        if request is not None:
            # Row-locked read-modify-write: workers may record chunks of one batch at once.
            log = SmsBatch.objects.select_for_update().values_list("requests", flat=True)
            changes["requests"] = [*log.get(pk=batch_id), request]
        if changes:
            SmsBatch.objects.filter(pk=batch_id).update(**changes)


def notify(changes: list[StatusChange]) -> None:
    """Send ``message_status_changed`` for each real change, once it is committed."""
    changes = [change for change in changes if change[1] != change[2]]
    if not changes or not message_status_changed.has_listeners(SmsMessage):
        return

    def send() -> None:
        for message, old, new in changes:
            for receiver, result in message_status_changed.send_robust(
                sender=SmsMessage, message=message, old_status=old, new_status=new
            ):
                if isinstance(result, Exception):
                    # A receiver's bug must not turn a sent message into an exception.
                    logger.error(
                        "message_status_changed receiver %r failed for message %s",
                        receiver,
                        message.pk,
                        exc_info=result,
                    )

    transaction.on_commit(send)
