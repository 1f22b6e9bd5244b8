"""Resending: a new message for each chosen one, linked to it, sent as a new batch.

Staff decide what to resend (SPEC §6), so any original qualifies, whatever its status; the
originals themselves are never modified.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator
from operator import attrgetter

from django.db.models import Max, QuerySet

from ..backends import get_backend
from ..models import Channel, SmsBatch, SmsMessage
from .sending import CHUNK_SIZE, build_record, chunked, store_and_submit

logger = logging.getLogger("django_smsgw")

# What a resend reads from an original; everything else of the copy starts afresh.
COPIED_FIELDS = ("pk", "number", "message", "channel")


def resend_messages(messages: Iterable[SmsMessage]) -> list[SmsBatch]:
    """Send a new copy of each of ``messages``; one new ``resend`` batch per channel.

    ``messages`` is a queryset (read in chunks, so a selection of any size keeps memory flat)
    or any iterable of messages. A batch carries one channel (each channel is its own provider
    endpoint), so a selection spanning channels becomes one batch per channel, in the order of
    ``Channel``. Each copy has the original's number, text and channel, ``resent_from`` set to
    the original, and goes out now (the original's ``send_at`` is not copied). A copy is
    validated like any ``send_bulk`` item: one whose number or text is invalid is stored
    ``rejected`` with the reason, not sent.

    A request the provider refuses, or that fails in transport, is recorded on its copies and
    in the batch's request log, and the remaining chunks are still sent: resending never
    raises a ``GatewayError``. Read the outcome from each batch's counts and ``requests``.
    """
    backend = get_backend()
    batches: dict[str, SmsBatch] = {}
    for channel, originals in _chunks_by_channel(messages):
        if channel not in batches:
            batches[channel] = SmsBatch.objects.create(kind=SmsBatch.Kind.RESEND, channel=channel)
        batch = batches[channel]
        copies = [_copy(batch, original) for original in originals]
        error = store_and_submit(backend, batch, channel, copies)
        if error is not None:
            logger.warning("resend batch %s: a request failed: %s", batch.pk, error.reason)
    for batch in batches.values():
        batch.refresh_from_db()  # the counts and the request log were written in the database
    return list(batches.values())


def _chunks_by_channel(messages: Iterable[SmsMessage]) -> Iterator[tuple[str, list[SmsMessage]]]:
    """(channel, ≤1,000 originals) in channel then id order."""
    if not isinstance(messages, QuerySet):
        position = {channel: index for index, channel in enumerate(Channel.values)}
        ordered = sorted(messages, key=lambda message: (position[message.channel], message.pk))
        for channel, group in itertools.groupby(ordered, key=attrgetter("channel")):
            for chunk in chunked(group, CHUNK_SIZE):
                yield channel, chunk
        return
    # The copies land in the table being read and may match the selection's filters (a
    # changelist filtered on "failed", say): ids above the selection's highest id, fixed
    # before the first copy exists, are never read.
    selection = messages.select_related(None).order_by()
    ceiling = selection.aggregate(ceiling=Max("pk"))["ceiling"]
    if ceiling is None:
        return
    for channel in Channel.values:
        after = 0
        while chunk := list(
            selection.filter(channel=channel, pk__gt=after, pk__lte=ceiling)
            .order_by("pk")
            .only(*COPIED_FIELDS)[:CHUNK_SIZE]
        ):
            yield channel, chunk
            after = chunk[-1].pk


def _copy(batch: SmsBatch, original: SmsMessage) -> SmsMessage:
    item = {"number": original.number, "message": original.message}
    copy = build_record(batch, original.channel, item, send_at=None, queued=False)
    copy.resent_from_id = original.pk
    return copy
