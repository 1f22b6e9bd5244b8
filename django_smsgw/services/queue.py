"""The queue: workers claim queued messages in the database, send them, record the outcome.

How a queued message travels (SPEC §7):

1. Claim (``claim_queued_messages``): a short transaction takes up to 1,000 due messages of one
   channel and marks them ``sending`` with a lease. Where the database has ``SELECT … FOR UPDATE
   SKIP LOCKED`` (PostgreSQL) concurrent workers skip each other's rows; elsewhere (SQLite) an
   UPDATE repeats the conditions, and only the rows it changed are claimed. The lease's expiry,
   unique per claim, names the claim's rows.
2. Start (``mark_request_started``): the moment the request starts is committed just before it
   (and the lease renewed from it). No transaction is open during the request.
3. Record (``send_claimed_messages``): the outcome is written as ``deliver`` writes it, except
   that a request which provably never reached the provider is retried after a back-off, and
   messages refused for balance go back to ``queued`` while the channel pauses.
4. Sweep (``sweep_expired_leases``): a claim whose worker died expires. Request never started:
   back to ``queued``. Request maybe started: ``unknown``, never re-sent automatically.

django-post-office's lessons: a file lock does not keep workers on two machines apart, and
statuses written only at the end of a batch make a crash re-send it. Here every step is
committed before the next one can be observed.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from django.db import DatabaseError, close_old_connections, connections, router, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from .. import conf
from ..backends import BaseBackend, get_backend
from ..exceptions import GatewayError, GatewayRefused, ProviderUnreachable
from ..models import BalanceSnapshot, SmsMessage, Status
from ..protocol import codes
from . import outcomes
from .balance import check_balance
from .sending import announce_delivery, submit

logger = logging.getLogger("django_smsgw")

CHUNK_SIZE = codes.MAX_PACKETS_PER_REQUEST

# The provider's ways of saying the balance is gone. Nothing was sent: the messages stay queued.
BALANCE_GLOBAL_CODES = frozenset({50})  # Expired Balance
BALANCE_PACKET_CODES = frozenset({80})  # Minimum Balance

# The provider's "Expired" is a date in Western Indonesia.
WIB = ZoneInfo("Asia/Jakarta")

# What recording a claim's outcome writes on each message.
RECORDED_FIELDS = [*outcomes.OUTCOME_FIELDS, "next_attempt_at"]

SWEPT_ERROR = (
    "the worker's lease expired after its request to the provider started: the message may "
    "have been sent, so it is not sent again automatically"
)


@dataclass
class Claim:
    """Messages one worker holds: all ``sending``, of one channel, under one lease."""

    channel: str
    messages: list[SmsMessage]
    lease: dt.datetime  # every message's lease_expires_at; names this claim's rows


@dataclass
class ChunkOutcome:
    """What one provider request did to the messages of a claim."""

    channel: str
    requested: bool = False  # False when the claim was lost before its request started
    statuses: Counter = field(default_factory=Counter)  # status -> messages, after recording
    error: GatewayError | None = None  # the request failed as a whole
    retry_at: dt.datetime | None = None  # the provider was unreachable: first retry
    balance_refused: bool = False  # some or all messages were refused for balance


@dataclass
class DrainReport:
    """What a pass of ``send_queued_messages`` did."""

    requests: int = 0
    statuses: Counter = field(default_factory=Counter)  # "queued" = put back for later
    paused: set[str] = field(default_factory=set)  # channels waiting for a balance check
    unreachable: GatewayError | None = None  # the provider could not be reached: pass ended
    retry_at: dt.datetime | None = None

    def add(self, outcome: ChunkOutcome) -> None:
        self.requests += outcome.requested
        self.statuses.update(outcome.statuses)
        if outcome.balance_refused:
            self.paused.add(outcome.channel)
        if outcome.retry_at is not None:
            self.retry_at = min(filter(None, (self.retry_at, outcome.retry_at)))

    def summary(self) -> dict[str, Any]:
        """The report as JSON-friendly data (for Celery results and logs)."""
        return {
            "requests": self.requests,
            "statuses": dict(self.statuses),
            "paused": sorted(self.paused),
            "unreachable": self.unreachable.reason if self.unreachable else None,
            "retry_at": self.retry_at.isoformat() if self.retry_at else None,
        }


@dataclass(frozen=True)
class SweepResult:
    requeued: int = 0  # claims that expired before their request started
    unknown: int = 0  # claims that expired after their request may have started


# Claiming ---------------------------------------------------------------------------------------


def due(now: dt.datetime) -> Q:
    """Queued and due. ``send_at`` plays no part: the provider holds scheduled messages."""
    return Q(status=Status.QUEUED) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))


def new_lease(now: dt.datetime) -> dt.datetime:
    # The random sub-second part keeps two claims made in the same microsecond apart.
    seconds = float(conf.get("QUEUE_LEASE"))
    return now + dt.timedelta(seconds=seconds, microseconds=random.randrange(1_000_000))


def next_due_channel(*, ids: list[int] | None = None, exclude: Iterable[str] = ()) -> str | None:
    """The channel of the oldest due message (among ``ids`` if given), not in ``exclude``."""
    messages = SmsMessage.objects.filter(due(timezone.now())).exclude(channel__in=list(exclude))
    if ids is not None:
        messages = messages.filter(pk__in=ids)
    return messages.order_by("created_at").values_list("channel", flat=True).first()


def claim_queued_messages(
    channel: str, *, ids: list[int] | None = None, limit: int = CHUNK_SIZE
) -> Claim | None:
    """Claim up to ``limit`` due messages of ``channel``, oldest first (only ``ids`` if given):
    mark them ``sending`` under a new lease and commit. None when there is nothing to claim.

    Call it outside a transaction: the claim must be committed before the request is made.
    """
    now = timezone.now()
    lease = new_lease(now)
    candidates = SmsMessage.objects.filter(due(now), channel=channel)
    if ids is not None:
        candidates = candidates.filter(pk__in=ids)
    claimed = {
        "status": Status.SENDING,
        "lease_expires_at": lease,
        "request_started_at": None,
        "updated_at": now,
    }
    alias = router.db_for_write(SmsMessage)
    if connections[alias].features.has_select_for_update_skip_locked:
        with transaction.atomic(using=alias):
            messages = list(
                candidates.order_by("created_at").select_for_update(skip_locked=True)[:limit]
            )
            if messages:
                SmsMessage.objects.filter(pk__in=[m.pk for m in messages]).update(**claimed)
    else:
        messages = claim_by_conditional_update(candidates, limit, claimed)
    if not messages:
        return None
    for message in messages:
        message.status = Status.SENDING
        message.lease_expires_at = lease
        message.request_started_at = None
    return Claim(channel, messages, lease)


def claim_by_conditional_update(
    candidates: QuerySet, limit: int, claimed: dict[str, Any]
) -> list[SmsMessage]:
    """Claim without row locks: pick ids, then an UPDATE that repeats the conditions. Workers
    may pick the same ids; the UPDATE's row count proves how many each one got, and the lease
    it wrote names them. A worker that got none picks again (someone else made progress)."""
    while True:
        picked = pick_candidates(candidates, limit)
        if not picked:
            return []
        if candidates.filter(pk__in=picked).update(**claimed):
            return list(
                SmsMessage.objects.filter(
                    pk__in=picked,
                    status=Status.SENDING,
                    lease_expires_at=claimed["lease_expires_at"],
                )
            )


def pick_candidates(candidates: QuerySet, limit: int) -> list[int]:
    return list(candidates.order_by("created_at").values_list("pk", flat=True)[:limit])


def mark_request_started(claim: Claim) -> None:
    """Commit that the claim's request is starting, and renew its lease from now.

    From here on a lost claim means "maybe sent". A message the claim no longer holds (its
    lease expired and a sweeper took it back) is dropped from the claim and not sent.
    """
    now = timezone.now()
    lease = new_lease(now)
    ids = [message.pk for message in claim.messages]
    started = SmsMessage.objects.filter(
        pk__in=ids, status=Status.SENDING, lease_expires_at=claim.lease
    ).update(
        request_started_at=now, lease_expires_at=lease, attempts=F("attempts") + 1, updated_at=now
    )
    if started != len(ids):
        kept = set(
            SmsMessage.objects.filter(
                pk__in=ids, lease_expires_at=lease, request_started_at=now
            ).values_list("pk", flat=True)
        )
        logger.warning(
            "%d claimed message(s) were taken back before their request started "
            "(the lease expired); they are not sent by this worker",
            len(ids) - len(kept),
        )
        claim.messages = [message for message in claim.messages if message.pk in kept]
    claim.lease = lease
    for message in claim.messages:
        message.request_started_at = now
        message.lease_expires_at = lease
        message.attempts += 1


# Sending and recording --------------------------------------------------------------------------


def send_claimed_messages(claim: Claim, backend: BaseBackend | None = None) -> ChunkOutcome:
    """Send a claim in one provider request and record the outcome (see the module's notes)."""
    backend = backend or get_backend()
    mark_request_started(claim)
    records = claim.messages
    outcome = ChunkOutcome(claim.channel)
    if not records:
        return outcome
    error, request = submit(backend, claim.channel, records)
    now = timezone.now()
    outcome.requested = True
    outcome.error = error
    if isinstance(error, ProviderUnreachable):
        outcome.retry_at = schedule_retry(records, error, now)
    elif isinstance(error, GatewayRefused) and error.code in BALANCE_GLOBAL_CODES:
        keep_for_balance(records, now)
        outcome.balance_refused = True
    elif error is None:
        refused = [
            record
            for record in records
            if record.status == Status.REJECTED and record.sending_status in BALANCE_PACKET_CODES
        ]
        keep_for_balance(refused, now)
        outcome.balance_refused = bool(refused)
    for record in records:
        if record.status == Status.ACCEPTED:
            record.error = ""  # an earlier attempt's reason no longer applies
    try:
        recorded = record_outcome(claim, request)
    except DatabaseError:
        accepted = [r.sending_id for r in records if r.status == Status.ACCEPTED]
        logger.error(
            "could not record the outcome of a request carrying %d message(s) (ids %s..%s); "
            "the provider accepted %d (sending ids %s). They become 'unknown' when their lease "
            "expires.",
            len(records),
            records[0].pk,
            records[-1].pk,
            len(accepted),
            accepted,
        )
        raise
    outcome.statuses = Counter(record.status for record in recorded)
    if outcome.balance_refused:
        balance_pauses.pause(claim.channel)
        logger.warning(
            "%s: the provider refused %d message(s) for balance; they stay queued and sending "
            "on %s pauses until a balance check succeeds",
            claim.channel,
            outcome.statuses[Status.QUEUED],
            claim.channel,
        )
    return outcome


def retry_delay(attempt: int, jitter: float | None = None) -> dt.timedelta:
    """The wait before attempt ``attempt + 1``: doubling from QUEUE_RETRY_DELAY, at most
    QUEUE_RETRY_MAX_DELAY, times a jitter of 0.5 to 1 so that workers do not retry in step."""
    base = float(conf.get("QUEUE_RETRY_DELAY"))
    ceiling = float(conf.get("QUEUE_RETRY_MAX_DELAY"))
    delay = min(ceiling, base * 2 ** min(max(attempt - 1, 0), 32))
    if jitter is None:
        jitter = random.uniform(0.5, 1.0)
    return dt.timedelta(seconds=delay * jitter)


def schedule_retry(
    records: list[SmsMessage], error: GatewayError, now: dt.datetime
) -> dt.datetime | None:
    """The request never reached the provider: queue each message again after its back-off,
    or leave it ``failed`` once it has had QUEUE_MAX_ATTEMPTS attempts. The first retry time."""
    max_attempts = int(conf.get("QUEUE_MAX_ATTEMPTS"))
    jitter = random.uniform(0.5, 1.0)  # one per chunk: its messages stay together
    retry_at = None
    for record in records:
        if record.attempts >= max_attempts:
            record.error = f"{error.reason}; gave up after {record.attempts} attempts"
            continue
        record.status = Status.QUEUED
        record.next_attempt_at = now + retry_delay(record.attempts, jitter)
        record.error = (
            f"{error.reason}; attempt {record.attempts} of {max_attempts}, "
            f"next after {record.next_attempt_at.isoformat(timespec='seconds')}"
        )
        retry_at = min(filter(None, (retry_at, record.next_attempt_at)))
    return retry_at


def keep_for_balance(records: list[SmsMessage], now: dt.datetime) -> None:
    """Refused for balance: nothing was sent, so the messages go back to the queue. The
    provider's code stays beside them (``sending_status`` 80, or the reason for a global 50)."""
    wait = dt.timedelta(seconds=float(conf.get("QUEUE_BALANCE_RECHECK")))
    for record in records:
        record.status = Status.QUEUED
        record.next_attempt_at = now + wait
        record.error = f"{record.error}; queued again until a balance check succeeds"


def record_outcome(claim: Claim, request: dict[str, Any]) -> list[SmsMessage]:
    """Record the outcome of a claim's request as ``deliver`` does: messages, their batches'
    counts and request logs in one transaction, then the signal, then the delivery reports
    that arrived before the reply was recorded. Returns the messages written.

    The batches count claimed messages as ``queued``: one put back in the queue moves no count
    and fires no signal. A worker that stalled past its lease may find some messages swept to
    ``unknown``; the provider's answer, when there is one, still replaces that.
    """
    records = claim.messages
    ids = [record.pk for record in records]
    previous = dict.fromkeys(ids, Status.QUEUED)
    alias = router.db_for_write(SmsMessage)
    with transaction.atomic(using=alias, savepoint=False):
        # A write comes first: on SQLite it takes the write lock before any read (a read then a
        # write would risk "database is locked"), and it tells which messages are still held.
        held = SmsMessage.objects.filter(
            pk__in=ids, status=Status.SENDING, lease_expires_at=claim.lease
        ).update(lease_expires_at=None)
        written = records
        if held != len(records):
            written = lost_lease_records(records, previous)
        outcomes.record_delivery(
            written,
            previous,
            request,
            fields=RECORDED_FIELDS,
            batch_ids={record.batch_id for record in records},
        )
    announce_delivery(written, previous)
    return written


def lost_lease_records(records: list[SmsMessage], previous: dict[int, str]) -> list[SmsMessage]:
    """Of a claim's messages, those to write now that some were swept: the ones still held,
    and swept ones the provider answered for (``unknown`` is replaced by what we now know)."""
    ids = list(previous)
    held = set(
        SmsMessage.objects.filter(
            pk__in=ids, status=Status.SENDING, lease_expires_at=None
        ).values_list("pk", flat=True)
    )
    swept = set(
        SmsMessage.objects.filter(pk__in=ids, status=Status.UNKNOWN).values_list("pk", flat=True)
    )
    written = []
    for record in records:
        if record.pk in held:
            written.append(record)
        elif record.pk in swept and record.status != Status.QUEUED:
            previous[record.pk] = Status.UNKNOWN
            written.append(record)
    logger.error(
        "%d message(s) were swept while their request was in flight (lease of %s s too short?); "
        "%d of them recorded from the provider's answer",
        len(records) - len(held),
        conf.get("QUEUE_LEASE"),
        len(written) - len(held),
    )
    return written


# Sweeping ---------------------------------------------------------------------------------------


def sweep_expired_leases(now: dt.datetime | None = None) -> SweepResult:
    """Resolve the claims of workers that died: an expired claim whose request never started
    goes back to ``queued``; one whose request may have started becomes ``unknown``."""
    now = now or timezone.now()
    expired = SmsMessage.objects.filter(status=Status.SENDING, lease_expires_at__lt=now)
    # The batches still count these as queued: no count moves, no signal.
    requeued = expired.filter(request_started_at__isnull=True).update(
        status=Status.QUEUED, lease_expires_at=None, updated_at=now
    )
    started = expired.filter(request_started_at__isnull=False)
    unknown = 0
    alias = router.db_for_write(SmsMessage)
    while ids := list(started.values_list("pk", flat=True)[:CHUNK_SIZE]):
        with transaction.atomic(using=alias, savepoint=False):
            # The conditions again in the UPDATE (another sweeper may be at work); the marker
            # in lease_expires_at names the rows this statement changed, then is cleared.
            started.filter(pk__in=ids).update(
                status=Status.UNKNOWN, lease_expires_at=now, error=SWEPT_ERROR, updated_at=now
            )
            swept = list(
                SmsMessage.objects.filter(pk__in=ids, status=Status.UNKNOWN, lease_expires_at=now)
            )
            SmsMessage.objects.filter(pk__in=[m.pk for m in swept]).update(lease_expires_at=None)
            for batch_id, count in sorted(Counter(m.batch_id for m in swept).items()):
                outcomes.record_on_batch(
                    batch_id, Counter({Status.QUEUED: -count, Status.UNKNOWN: count})
                )
        for message in swept:
            message.lease_expires_at = None
        outcomes.notify([(message, Status.QUEUED, Status.UNKNOWN) for message in swept])
        unknown += len(swept)
    if requeued or unknown:
        logger.warning(
            "swept expired claims: %d message(s) queued again (never sent), %d unknown "
            "(their request may have reached the provider)",
            requeued,
            unknown,
        )
    return SweepResult(requeued, unknown)


# Pausing for balance ----------------------------------------------------------------------------


class BalancePauses:
    """Channels this process stopped sending on because the provider said the balance is gone.

    A pause lasts QUEUE_BALANCE_RECHECK seconds, then a balance check decides: lift it, or
    start another. Other processes learn of it from their own refused request, or from the
    stored balance snapshots (see ``may_send_on``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}

    def pause(self, channel: str) -> None:
        with self._lock:
            self._until[channel] = time.monotonic() + float(conf.get("QUEUE_BALANCE_RECHECK"))

    def lift(self, channel: str) -> None:
        with self._lock:
            self._until.pop(channel, None)

    def state(self, channel: str) -> str | None:
        """None: not paused; "waiting": paused; "due": paused, and time for a balance check."""
        with self._lock:
            until = self._until.get(channel)
        if until is None:
            return None
        return "waiting" if time.monotonic() < until else "due"

    def clear(self) -> None:
        with self._lock:
            self._until.clear()


balance_pauses = BalancePauses()


def balance_gone(snapshot: BalanceSnapshot) -> bool:
    """A successful check saying there is nothing to send with (empty, or past its expiry)."""
    if snapshot.global_status != codes.GLOBAL_SUCCESS:
        return False
    today = timezone.now().astimezone(WIB).date()
    empty = snapshot.balance is not None and snapshot.balance <= 0
    return empty or (snapshot.expires_on is not None and snapshot.expires_on < today)


def may_send_on(channel: str) -> bool:
    """False while sending on ``channel`` is paused for balance.

    Paused: this process had a request refused for balance, or the latest stored balance check
    of the channel (from any process, ``smsgw_balance`` included) says the balance is gone.
    Every QUEUE_BALANCE_RECHECK seconds a new balance check decides; sending resumes when it
    succeeds with a balance above zero that has not expired.
    """
    state = balance_pauses.state(channel)
    if state == "waiting":
        return False
    if state is None:
        latest = (
            BalanceSnapshot.objects.filter(channel=channel)
            .only("global_status", "balance", "expires_on", "checked_at")
            .order_by("-checked_at")
            .first()
        )
        if latest is None or not balance_gone(latest):
            return True
        recheck = dt.timedelta(seconds=float(conf.get("QUEUE_BALANCE_RECHECK")))
        if timezone.now() - latest.checked_at < recheck:
            return False
    if balance_check_succeeds(channel):
        balance_pauses.lift(channel)
        logger.info("%s: the balance check succeeded; sending resumes", channel)
        return True
    balance_pauses.pause(channel)
    return False


def balance_check_succeeds(channel: str) -> bool:
    try:
        snapshot = check_balance(channel)
    except GatewayError as exc:  # recorded on a snapshot and logged by check_balance
        logger.warning("%s: sending stays paused: %s", channel, exc.reason)
        return False
    if balance_gone(snapshot):
        logger.warning(
            "%s: sending stays paused: balance %s, expires %s",
            channel,
            snapshot.balance,
            snapshot.expires_on,
        )
        return False
    return True


# Draining and the worker loop -------------------------------------------------------------------


def send_queued_messages(
    *,
    ids: list[int] | None = None,
    backend: BaseBackend | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> DrainReport:
    """Claim and send due messages (only ``ids`` if given), a chunk at a time, until none is
    left that this worker may claim. Stops early, after recording the chunk in hand, when
    ``should_stop()`` is true or when the provider is unreachable (its messages wait for their
    retry). Channels paused for balance are skipped; their messages stay queued.
    """
    backend = backend or get_backend()  # a configuration error stops us before claiming
    ids = None if ids is None else list(ids)
    report = DrainReport()
    skipped: set[str] = set()
    while should_stop is None or not should_stop():
        channel = next_due_channel(ids=ids, exclude=skipped)
        if channel is None:
            break
        if not may_send_on(channel):
            skipped.add(channel)
            report.paused.add(channel)
            continue
        claim = claim_queued_messages(channel, ids=ids)
        if claim is None:  # what is left of it is held by other workers
            skipped.add(channel)
            continue
        outcome = send_claimed_messages(claim, backend)
        report.add(outcome)
        if outcome.balance_refused:
            skipped.add(channel)
        if isinstance(outcome.error, ProviderUnreachable):
            report.unreachable = outcome.error
            break
    return report


def run_worker(
    *,
    interval: float,
    stop: threading.Event,
    on_pass: Callable[[DrainReport], None] | None = None,
    on_error: Callable[[Exception], None] | None = None,
) -> None:
    """Sweep expired claims and send what is due, every ``interval`` seconds, until ``stop`` is
    set; the chunk in hand is sent and recorded first. A database error is reported to
    ``on_error`` and the loop goes on: a database restart does not end the worker."""
    backend = get_backend()
    while not stop.is_set():
        close_old_connections()
        try:
            sweep_expired_leases()
            report = send_queued_messages(backend=backend, should_stop=stop.is_set)
        except DatabaseError as exc:
            logger.error("queue worker: database error: %s", exc)
            if on_error is not None:
                on_error(exc)
            close_old_connections()
        else:
            if on_pass is not None:
                on_pass(report)
        stop.wait(interval)


# Celery -----------------------------------------------------------------------------------------


def enqueue_for_celery(message_ids: list[int]) -> None:
    """When SMSGW["CELERY"] is on, enqueue a task sending ``message_ids`` once the current
    transaction commits (at once outside one). Otherwise the messages wait for a worker."""
    if not message_ids or not conf.get("CELERY"):
        return
    ids = list(message_ids)

    def enqueue() -> None:
        try:
            from .. import tasks  # Celery is an optional extra, imported only when configured

            tasks.send_queued_messages.delay(ids)
        except Exception as exc:  # noqa: BLE001 - the broker's errors vary by transport
            # The messages are stored: the caller must not see a failure (and send them again).
            # A missing Celery is also reported by the system check smsgw.E022.
            logger.warning(
                "could not enqueue the Celery task for %d queued message(s): %s; they stay "
                "queued for the periodic send_due_messages task or smsgw_send_queued",
                len(ids),
                exc,
            )

    transaction.on_commit(enqueue)
