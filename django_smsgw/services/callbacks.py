"""Delivery reports: store every item as received, then move messages forward (SPEC §4–§5).

A message's status only moves to a later stage of its lifecycle (``STATUS_RANK``); the first
final status wins. The move is a conditional UPDATE, so when two reports for one message are
processed at the same moment exactly one of them changes it and the signal fires once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from .. import db
from ..models import STATUS_RANK, DeliveryReport, SmsMessage
from ..protocol import codes
from ..protocol.replies import DeliveryUpdate
from ..signals import message_status_changed
from . import outcomes

logger = logging.getLogger("django_smsgw")

# Each retry follows a status that moved forward meanwhile; a lifecycle has fewer stages.
MAX_ROUNDS = 6

StatusChange = tuple[int, str, str]  # message pk, old status, new status

CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class ReceiveResult:
    received: int  # items stored as DeliveryReport
    changed: int  # messages whose status changed
    pending: int  # items for sending ids not known yet (kept, applied later)


def receive_reports(updates: list[DeliveryUpdate], remote_addr: str | None = None) -> ReceiveResult:
    """Store the items of one callback and apply them; a constant number of queries."""
    sending_ids = {update.sending_id for update in updates}
    owners = message_ids_for(sending_ids)
    now = timezone.now()
    reports = [
        DeliveryReport(
            message_id=owners.get(update.sending_id),
            sending_id=update.sending_id,
            number=update.number,
            delivery_status=update.code,
            delivery_status_text=update.text,
            raw=update.raw,
            remote_addr=remote_addr,
            applied_at=now if update.sending_id in owners else None,
        )
        for update in updates
    ]
    orphans = sending_ids - owners.keys()
    if not orphans:
        with transaction.atomic(savepoint=False):  # one commit: stored and applied together
            db.insert_returning_ids(reports)
            changes = apply_reports(reports)
        return ReceiveResult(received=len(reports), changed=len(changes), pending=0)
    # The provider can call back before our send request has returned. Those reports wait
    # without a message; the send path adopts them once it records the sending id. Looking
    # again once our insert is committed closes the race where it recorded the id in between.
    db.insert_returning_ids(reports)
    changes = apply_reports(reports)
    adopted, late_changes = adopt_orphan_reports(orphans)
    pending = sum(1 for r in reports if r.message_id is None and r.sending_id not in adopted)
    return ReceiveResult(
        received=len(reports), changed=len(changes) + len(late_changes), pending=pending
    )


def message_ids_for(sending_ids: Iterable[int]) -> dict[int, int]:
    return dict(
        SmsMessage.objects.filter(sending_id__in=list(sending_ids)).values_list("sending_id", "pk")
    )


def adopt_orphan_reports(
    sending_ids: Iterable[int], *, received_since: dt.datetime | None = None
) -> tuple[set[int], list[StatusChange]]:
    """Link waiting reports to the messages that now have these sending ids, and apply them.

    ``received_since``: no report for these ids can be older (their request started then),
    so one cheap query can tell that none is waiting. Returns the sending ids adopted and the
    status changes made.
    """
    sending_ids = list(sending_ids)
    if not sending_ids:
        return set(), []
    waiting = DeliveryReport.objects.filter(message__isnull=True)
    if received_since is not None:
        # The margin allows for the clock of the server that received the callback.
        waiting = waiting.filter(received_at__gte=received_since - CLOCK_SKEW)
        if not waiting.exists():
            return set(), []
    orphans = list(
        waiting.filter(sending_id__in=sending_ids)
        .only("pk", "sending_id", "delivery_status", "delivery_status_text")
        .order_by("pk")
    )
    if not orphans:
        return set(), []
    owners = message_ids_for({report.sending_id for report in orphans})
    now = timezone.now()
    linked = []
    for report in orphans:
        if report.sending_id in owners:
            report.message_id = owners[report.sending_id]
            report.applied_at = now
            linked.append(report)
    db.update_fields(linked, ["message", "applied_at"])
    return {report.sending_id for report in linked}, apply_reports(linked)


def apply_reports(reports: list[DeliveryReport]) -> list[StatusChange]:
    """Move each linked report's message forward; the (pk, old, new) changes made."""
    by_message: dict[int, list[DeliveryReport]] = defaultdict(list)
    for report in reports:
        if report.message_id is not None:
            by_message[report.message_id].append(report)
    if not by_message:
        return []
    changes: list[StatusChange] = []
    with transaction.atomic(savepoint=False):
        # Lock the messages in one order (by id) before changing any: two callbacks touching
        # the same messages in different orders would otherwise deadlock on PostgreSQL.
        locked = SmsMessage.objects.select_for_update().filter(pk__in=list(by_message))
        current = dict(locked.order_by("pk").values_list("pk", "status"))
        pending = sorted(current)
        for _ in range(MAX_ROUNDS):
            groups: dict[tuple[str, str, int, str], list[int]] = defaultdict(list)
            for pk in pending:
                target = furthest(current[pk], by_message[pk])
                if target is not None:
                    groups[(current[pk], *target)].append(pk)
            now = timezone.now()
            missed: list[int] = []
            for (old, new, code, text), pks in groups.items():
                done = db.update_returning_ids(
                    SmsMessage,
                    pks,
                    {
                        "status": new,
                        "delivery_status": code,
                        "delivery_status_text": text,
                        "updated_at": now,
                    },
                    where={"status": old},
                )
                changes.extend((pk, old, new) for pk in done)
                missed.extend(pk for pk in pks if pk not in done)
            if not missed:
                break
            # Where rows cannot be locked (SQLite), another writer may have moved these
            # between our read and our update: start again from where they are now.
            current.update(SmsMessage.objects.filter(pk__in=missed).values_list("pk", "status"))
            pending = sorted(missed)
    notify(changes)
    return changes


def furthest(status: str, reports: list[DeliveryReport]) -> tuple[str, int, str] | None:
    """Where the reports, applied in the order received, take a message now at ``status``.

    (new status, code, text), or None when none of them moves it forward: a repeated or late
    report, a second final status, or a code we don't know (kept in the report, not applied).
    """
    target = None
    for report in reports:
        new = codes.status_for_delivery(report.delivery_status)
        if new is not None and STATUS_RANK[new] > STATUS_RANK[status]:
            status = new
            target = (new, report.delivery_status, report.delivery_status_text)
    return target


def notify(changes: list[StatusChange]) -> None:
    if not changes or not message_status_changed.has_listeners(SmsMessage):
        return
    messages = SmsMessage.objects.in_bulk([pk for pk, _old, _new in changes])
    outcomes.notify([(messages[pk], old, new) for pk, old, new in changes if pk in messages])
