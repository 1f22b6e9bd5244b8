"""`manage.py smsgw_balance`: check the balance, store a snapshot, alert through the exit status."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from django_smsgw.exceptions import GatewayError
from django_smsgw.models import BalanceSnapshot
from django_smsgw.protocol import codes
from django_smsgw.services.balance import check_balance
from django_smsgw.services.validation import resolve_channel

# Exit statuses, for cron and monitoring. Bad usage exits 2, as argparse does for the errors
# it finds itself.
EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_LOW = 3

# The provider's "Expired" is a date in Western Indonesia.
WIB = ZoneInfo("Asia/Jakarta")


def non_negative_amount(text: str) -> Decimal:
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount") from None
    if not amount.is_finite() or amount < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount of 0 or more")
    return amount


def non_negative_days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if days < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days of 0 or more")
    return days


class Command(BaseCommand):
    help = (
        "Check the provider balance of a channel (the default channel, --channel C, or --all), "
        "store a BalanceSnapshot of each check, and print one line per channel (or JSON). "
        f"Exit status: {EXIT_OK} all fine; {EXIT_CHECK_FAILED} the provider refused a check or "
        f"did not answer (e.g. code 35, its rate limit on balance checks); {EXIT_USAGE} bad "
        f"usage; {EXIT_LOW} a balance is under --min-balance or expires within --warn-days "
        f"days. When both {EXIT_CHECK_FAILED} and {EXIT_LOW} apply, {EXIT_CHECK_FAILED}. "
        "Problems are also written to stderr, one line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group()
        which.add_argument(
            "--channel",
            choices=codes.CHANNELS,
            help="the channel to check (default: the DEFAULT_CHANNEL setting)",
        )
        which.add_argument("--all", action="store_true", help="check every channel")
        parser.add_argument(
            "--json",
            action="store_true",
            help="print a JSON list with one object per channel instead of lines",
        )
        parser.add_argument(
            "--min-balance",
            type=non_negative_amount,
            metavar="N",
            help=f"exit {EXIT_LOW} when a balance is under N rupiah",
        )
        parser.add_argument(
            "--warn-days",
            type=non_negative_days,
            metavar="D",
            help=f"exit {EXIT_LOW} when a balance expires within D days (0: today or earlier)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # call_command(channel=..., all=True) skips argparse's own checks; repeat them here.
        if options["channel"] and options["all"]:
            raise CommandError("use --channel or --all, not both", returncode=EXIT_USAGE)
        try:
            channels = codes.CHANNELS if options["all"] else [resolve_channel(options["channel"])]
        except ValidationError as exc:  # an unknown channel given to call_command
            raise CommandError("; ".join(exc.messages), returncode=EXIT_USAGE) from None
        min_balance = options["min_balance"]
        warn_days = options["warn_days"]
        today = timezone.now().astimezone(WIB).date()

        results = []
        failures = []
        warnings = []
        for channel in channels:
            try:
                snapshot = check_balance(channel)
            except GatewayError as exc:
                failures.append(f"{channel}: {exc.reason}")
                results.append(as_dict(channel, exc.snapshot, today, error=exc.reason))
                continue
            problems = judge(snapshot, min_balance, warn_days, today)
            warnings.extend(f"{channel}: {problem}" for problem in problems)
            results.append(as_dict(channel, snapshot, today, problems=problems))

        if options["json"]:
            self.stdout.write(json.dumps(results, indent=2))
        else:
            for result in results:
                self.stdout.write(as_line(result))
        if failures:
            raise CommandError("; ".join(failures + warnings), returncode=EXIT_CHECK_FAILED)
        if warnings:
            raise CommandError("; ".join(warnings), returncode=EXIT_LOW)


def judge(
    snapshot: BalanceSnapshot, min_balance: Decimal | None, warn_days: int | None, today: dt.date
) -> list[str]:
    """What is wrong with a successful check against the thresholds; empty when all is fine."""
    problems = []
    if min_balance is not None and snapshot.balance is not None and snapshot.balance < min_balance:
        problems.append(
            f"balance {amount(snapshot.balance)} is under the minimum {amount(min_balance)}"
        )
    if warn_days is not None and snapshot.expires_on is not None:
        days_left = (snapshot.expires_on - today).days
        if days_left <= warn_days:
            problems.append(
                f"balance expired on {snapshot.expires_on}"
                if days_left < 0
                else f"balance expires on {snapshot.expires_on}, in {days_left} day(s)"
            )
    return problems


def as_dict(
    channel: str,
    snapshot: BalanceSnapshot | None,
    today: dt.date,
    *,
    problems: list[str] | None = None,
    error: str = "",
) -> dict[str, Any]:
    """One channel's result, as printed with --json."""
    balance = snapshot.balance if snapshot is not None else None
    expires_on = snapshot.expires_on if snapshot is not None else None
    return {
        "channel": channel,
        "ok": not error,
        "balance": None if balance is None else json_number(balance),
        "expires_on": expires_on.isoformat() if expires_on else None,
        "days_left": (expires_on - today).days if expires_on else None,
        "checked_at": snapshot.checked_at.isoformat() if snapshot is not None else None,
        "global_status": snapshot.global_status if snapshot is not None else None,
        "error": error or None,
        "warnings": problems or [],
        "snapshot_id": snapshot.pk if snapshot is not None else None,
    }


def json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def amount(value: Decimal | float) -> str:
    """Rupiah as a person reads them: ``880``, or ``880.50`` when there are cents."""
    value = Decimal(str(value))
    return str(int(value)) if value == value.to_integral_value() else f"{value:.2f}"


def as_line(result: dict[str, Any]) -> str:
    """One channel's result as one line: channel, balance, expiry, and any warning."""
    channel = result["channel"]
    if not result["ok"]:
        return f"{channel}: check failed: {result['error']}"
    balance = "not given" if result["balance"] is None else f"{amount(result['balance'])} rupiah"
    expires = "expiry not given"
    if result["expires_on"]:
        expires = f"expires {result['expires_on']} (in {result['days_left']} days)"
    line = f"{channel}: balance {balance}, {expires}"
    if result["warnings"]:
        line += " — WARNING: " + "; ".join(result["warnings"])
    return line
