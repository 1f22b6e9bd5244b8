"""Retention: deleting what is old and settled, a bounded batch at a time.

Only messages in a final status are ever deleted (their fate is known and can no longer
change), together with their delivery reports. Each batch is its own short transaction, so a
cleanup of millions of rows neither holds long locks nor loses its progress when stopped.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from ..models import FINAL_STATUSES, DeliveryReport, SmsBatch, SmsMessage

logger = logging.getLogger("django_smsgw")

DEFAULT_BATCH_SIZE = 1000


@dataclass(frozen=True)
class CleanupCounts:
    """What a cleanup deleted (or, in a dry run, would delete)."""

    messages: int = 0
    reports: int = 0  # delivery reports of those messages
    orphan_reports: int = 0  # reports never matched to a message
    batches: int = 0  # batches left without messages


def delete_old_records(
    days: int,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
) -> CleanupCounts:
    """Delete messages older than ``days`` days whose status is final, and what hangs on them.

    Also deletes delivery reports older than ``days`` that never matched a message, and
    batches older than ``days`` left without messages. Rows are deleted ``batch_size`` at a
    time, each batch in a transaction of its own. ``dry_run`` counts instead of deleting.
    ``ValueError`` for ``days`` < 1 or ``batch_size`` < 1.
    """
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be a whole number of at least 1, not {days!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch size must be a whole number of at least 1, not {batch_size!r}")
    cutoff = timezone.now() - dt.timedelta(days=days)
    old_final = Q(created_at__lt=cutoff, status__in=FINAL_STATUSES)
    orphans = DeliveryReport.objects.filter(message__isnull=True, received_at__lt=cutoff)
    old_batches = SmsBatch.objects.filter(created_at__lt=cutoff)
    if dry_run:
        survivors = SmsMessage.objects.filter(batch=OuterRef("pk")).exclude(old_final)
        return CleanupCounts(
            messages=SmsMessage.objects.filter(old_final).count(),
            reports=DeliveryReport.objects.filter(
                message__created_at__lt=cutoff, message__status__in=FINAL_STATUSES
            ).count(),
            orphan_reports=orphans.count(),
            batches=old_batches.filter(~Exists(survivors)).count(),
        )

    messages = reports = 0
    for ids in id_batches(SmsMessage.objects.filter(old_final), batch_size):
        with transaction.atomic():
            # The condition again, in the statement itself: never a message that is not final.
            deleted = SmsMessage.objects.filter(old_final, pk__in=ids).delete()[1]
        messages += deleted.get(SmsMessage._meta.label, 0)
        reports += deleted.get(DeliveryReport._meta.label, 0)
    orphan_reports = 0
    for ids in id_batches(orphans, batch_size):
        deleted = orphans.filter(pk__in=ids).delete()[1]
        orphan_reports += deleted.get(DeliveryReport._meta.label, 0)
    empty_batches = old_batches.filter(~Exists(SmsMessage.objects.filter(batch=OuterRef("pk"))))
    batches = 0
    for ids in id_batches(empty_batches, batch_size):
        with transaction.atomic():
            # Deleting a batch cascades to its messages, so it must still be empty when it
            # goes: once locked, it cannot gain a message (the new row's foreign key check
            # waits for the lock), and emptiness is checked again after the lock is held.
            lock = SmsBatch.objects.filter(pk__in=ids).select_for_update()
            locked_ids = list(lock.values_list("pk", flat=True))
            deleted = empty_batches.filter(pk__in=locked_ids).delete()[1]
        batches += deleted.get(SmsBatch._meta.label, 0)
    counts = CleanupCounts(messages, reports, orphan_reports, batches)
    logger.info("cleanup of records older than %d days: %s", days, counts)
    return counts


def id_batches(queryset: QuerySet, batch_size: int) -> Iterator[list[int]]:
    """The ids of ``queryset``, ``batch_size`` at a time in id order, read as they are deleted."""
    after = 0
    while ids := list(
        queryset.filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)[:batch_size]
    ):
        yield ids
        after = ids[-1]
