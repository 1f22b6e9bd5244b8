"""`manage.py smsgw_send_queued`: the queue worker, for cron (one pass) or systemd (`--loop`)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from django_smsgw.models import SmsMessage, Status
from django_smsgw.services.queue import (
    DrainReport,
    run_worker,
    send_queued_messages,
    sweep_expired_leases,
)

EXIT_OK = 0
EXIT_ERROR = 1  # could not work: configuration, database
EXIT_HELD = 3  # messages held back: provider unreachable (retried later) or paused for balance


def positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return seconds


def first_line(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM (systemd, Docker) and SIGINT set ``stop``: the chunk in hand is finished first."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread (call_command)
        return

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def describe(report: DrainReport) -> str:
    if not report.requests:
        return "nothing sent"
    counts = ", ".join(f"{count} {status}" for status, count in sorted(report.statuses.items()))
    return f"{report.requests} request(s): {counts}"


def held_back(report: DrainReport) -> str:
    """One line on what this pass had to leave queued; empty when nothing."""
    problems = []
    if report.unreachable is not None:
        retry = report.retry_at.isoformat(timespec="seconds") if report.retry_at else "never"
        problems.append(
            f"the provider is unreachable ({report.unreachable.reason}); next retry {retry}"
        )
    for channel in sorted(report.paused):
        waiting = SmsMessage.objects.filter(channel=channel, status=Status.QUEUED).count()
        problems.append(
            f"{channel}: paused for balance, {waiting} message(s) stay queued until a balance "
            "check succeeds"
        )
    return "; ".join(problems)


class Command(BaseCommand):
    help = (
        "Send the queued messages that are due, then exit (for cron); with --loop keep running "
        "(for systemd). Any number of these workers may run, on any number of machines. "
        "SIGTERM or Ctrl-C stops after the chunk in hand is recorded. Exit status: "
        f"{EXIT_OK} done; {EXIT_ERROR} an error (configuration, database); {EXIT_HELD} "
        "messages were held back (the provider is unreachable, or a channel is paused for "
        "balance). Problems are written to stderr, one line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--loop",
            action="store_true",
            help="keep running: sweep expired claims and send what is due every --interval",
        )
        parser.add_argument(
            "--interval",
            type=positive_seconds,
            default=5.0,
            metavar="SECONDS",
            help="with --loop, the pause between passes (default 5)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.verbosity = options["verbosity"]
        stop = threading.Event()
        try:
            with stop_on_signals(stop):
                if options["loop"]:
                    self.loop(stop, options["interval"])
                else:
                    self.once(stop)
        except ImproperlyConfigured as exc:
            raise CommandError(first_line(exc), returncode=EXIT_ERROR) from None
        except DatabaseError as exc:
            message = f"database error: {first_line(exc)}"
            raise CommandError(message, returncode=EXIT_ERROR) from None

    def once(self, stop: threading.Event) -> None:
        sweep_expired_leases()
        report = send_queued_messages(should_stop=stop.is_set)
        if self.verbosity:
            self.stdout.write(describe(report))
        problem = held_back(report)
        if problem:
            raise CommandError(problem, returncode=EXIT_HELD)

    def loop(self, stop: threading.Event, interval: float) -> None:
        last_state: tuple = (False, frozenset())

        def on_pass(report: DrainReport) -> None:
            nonlocal last_state
            if report.requests and self.verbosity:
                self.stdout.write(describe(report))
            state = (report.unreachable is not None, frozenset(report.paused))
            if state != last_state and any(state):  # once per change, not every pass
                self.stderr.write(held_back(report))
            last_state = state

        def on_error(exc: Exception) -> None:
            self.stderr.write(f"database error: {first_line(exc)}; retrying in {interval:g} s")

        run_worker(interval=interval, stop=stop, on_pass=on_pass, on_error=on_error)
