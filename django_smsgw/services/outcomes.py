"""Recording what happened to messages, and telling the project about it."""

from __future__ import annotations

import logging
from collections import Counter

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


def save_outcomes(messages: list[SmsMessage]) -> None:
    """Write the outcome fields of ``messages``: one statement for the whole chunk."""
    db.update_fields(messages, OUTCOME_FIELDS)


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
