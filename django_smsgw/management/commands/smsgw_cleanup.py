"""`manage.py smsgw_cleanup`: delete old settled messages, their reports and empty batches."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_smsgw.services.housekeeping import DEFAULT_BATCH_SIZE, delete_old_records

EXIT_USAGE = 2


class Command(BaseCommand):
    help = (
        "Delete messages older than --days N whose status is final (delivered, undelivered, "
        "rejected, failed) with their delivery reports, delivery reports older than N days "
        "that never matched a message, and batches older than N days left without messages. "
        "A message that is not final is never deleted. Works --batch-size rows at a time, each "
        "batch in a transaction of its own; --dry-run only counts. Exit status: 0 done, "
        "2 bad usage."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            required=True,
            metavar="N",
            help="delete what is older than N days (at least 1)",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            metavar="K",
            help=f"rows deleted per batch and transaction (default {DEFAULT_BATCH_SIZE})",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would be deleted, delete nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days, dry_run = options["days"], options["dry_run"]
        try:
            counts = delete_old_records(days, batch_size=options["batch_size"], dry_run=dry_run)
        except ValueError as exc:
            raise CommandError(str(exc), returncode=EXIT_USAGE) from None
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(
            f"{verb} {counts.messages} final message(s) older than {days} day(s) with "
            f"{counts.reports} delivery report(s), {counts.orphan_reports} unmatched delivery "
            f"report(s) and {counts.batches} empty batch(es)."
        )
