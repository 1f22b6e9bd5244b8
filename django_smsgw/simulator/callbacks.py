"""Delivery-status callbacks: the provider POSTing `status_respon` bodies to `callbackurl`.

One dispatcher thread keeps a heap of due updates. Updates due together for the same URL go
out in POSTs of at most `batch` items, optionally twice (`duplicates`) and out of order
(`reorder`), the two misbehaviours provider-api.md §2 warns clients about.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from django_smsgw.protocol.codes import DELIVERY_TEXTS

from .provider import AcceptedMessage, dumps

logger = logging.getLogger("django_smsgw.simulator")

SCHEDULE, SENT, DELIVERED = 1, 2, 3
POST_TIMEOUT = 10.0

# (sendingid, number, deliverystatus); turned into JSON objects only when posted.
Update = tuple[int, str, int]


class CallbackDispatcher:
    """Schedules each accepted message's updates and POSTs them when due."""

    def __init__(
        self,
        delay: float = 1.0,
        batch: int = 100,
        duplicates: bool = False,
        reorder: bool = False,
        outcomes: Mapping[str, int] | None = None,
    ) -> None:
        if batch < 1:
            raise ValueError("callback_batch must be at least 1")
        self.delay = delay
        self.batch = batch
        self.duplicates = duplicates
        self.reorder = reorder
        # Longest suffix first, so the first match is the longest one.
        self._outcomes = sorted((outcomes or {}).items(), key=lambda item: -len(item[0]))
        self._heap: list[tuple[float, int, str, list[Update]]] = []
        self._sequence = itertools.count()
        self._condition = threading.Condition()
        self._in_flight = 0
        self._posted = 0
        self._errors = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._random = random.Random()

    def final_code(self, number: str) -> int:
        for suffix, code in self._outcomes:
            if number.endswith(suffix):
                return code
        return DELIVERED

    def schedule(self, url: str, messages: Iterable[AcceptedMessage]) -> None:
        """Plan "1 Schedule" (future sends only), "2 Sent" and the final code of each message."""
        now_monotonic = time.monotonic()
        now_epoch = time.time()
        entries: list[tuple[float, list[Update]]] = []
        by_send_time: dict[float | None, list[AcceptedMessage]] = {}
        for message in messages:
            by_send_time.setdefault(message.send_at, []).append(message)
        for send_at, group in by_send_time.items():
            start = now_monotonic
            if send_at is not None:
                start += max(send_at - now_epoch, 0.0)
                entries.append(
                    (now_monotonic + self.delay, [(m.sendingid, m.number, SCHEDULE) for m in group])
                )
            sent_at, final_at = start + self.delay, start + 2 * self.delay
            if self.reorder:
                sent_at, final_at = final_at, sent_at
            entries.append((sent_at, [(m.sendingid, m.number, SENT) for m in group]))
            entries.append(
                (final_at, [(m.sendingid, m.number, self.final_code(m.number)) for m in group])
            )
        with self._condition:
            for due, updates in entries:
                heapq.heappush(self._heap, (due, next(self._sequence), url, updates))
            self._condition.notify()

    def pending(self) -> int:
        """Updates not yet POSTed (including those being POSTed right now)."""
        with self._condition:
            return self._in_flight + sum(len(entry[3]) for entry in self._heap)

    def counters(self) -> dict[str, int]:
        with self._condition:
            return {"callbacks_posted": self._posted, "callback_errors": self._errors}

    def clear(self) -> None:
        """Forget pending updates and zero the counters."""
        with self._condition:
            self._heap.clear()
            self._posted = 0
            self._errors = 0

    def start(self) -> None:
        with self._condition:
            self._stopping = False
        self._thread = threading.Thread(
            target=self._run, name="smsgw-simulator-callbacks", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify()
        if self._thread is not None:
            self._thread.join(timeout=POST_TIMEOUT + 1)
            self._thread = None

    def _run(self) -> None:
        session = requests.Session()  # keep-alive to the receiver
        try:
            while True:
                due = self._wait_for_due()
                if due is None:
                    return
                try:
                    self._post(session, due)
                finally:
                    with self._condition:
                        self._in_flight = 0
        finally:
            session.close()

    def _wait_for_due(self) -> list[tuple[str, list[Update]]] | None:
        with self._condition:
            while True:
                if self._stopping:
                    return None
                now = time.monotonic()
                if self._heap and self._heap[0][0] <= now:
                    break
                self._condition.wait(self._heap[0][0] - now if self._heap else None)
            due = []
            while self._heap and self._heap[0][0] <= now:
                _, _, url, updates = heapq.heappop(self._heap)
                due.append((url, updates))
                self._in_flight += len(updates)
            return due

    def _post(self, session: requests.Session, due: list[tuple[str, list[Update]]]) -> None:
        by_url: dict[str, list[Update]] = {}
        for url, updates in due:
            by_url.setdefault(url, []).extend(updates)
        for url, updates in by_url.items():
            if self.reorder:
                self._random.shuffle(updates)
            for start in range(0, len(updates), self.batch):
                chunk = updates[start : start + self.batch]
                body = dumps({"status_respon": [_item(update) for update in chunk]})
                for _ in range(2 if self.duplicates else 1):
                    self._post_one(session, url, body, len(chunk))

    def _post_one(self, session: requests.Session, url: str, body: bytes, count: int) -> None:
        # The URL's path carries the client's webhook secret: log the host only.
        where = _origin(url)
        try:
            response = session.post(
                url, data=body, headers={"Content-Type": "application/json"}, timeout=POST_TIMEOUT
            )
            failed = not 200 <= response.status_code < 300
            if failed:
                logger.warning("callback to %s answered HTTP %s", where, response.status_code)
        except requests.RequestException as exc:
            failed = True
            logger.warning("callback to %s failed: %s", where, type(exc).__name__)
        logger.debug("callback POST to %s: %d updates", where, count)
        with self._condition:
            self._posted += 1
            self._errors += failed


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _item(update: Update) -> dict[str, Any]:
    sendingid, number, code = update
    # The provider sends deliverystatus as a string and sendingid as an int.
    return {
        "sendingid": sendingid,
        "number": number,
        "deliverystatus": str(code),
        "deliverystatustext": DELIVERY_TEXTS.get(code, "Unknown"),
    }
