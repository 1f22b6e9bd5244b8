"""Drives the database of a multi-process queue test from a process of its own, as the
application would: ``python -m tests.queue_driver COMMAND`` with tests.queue_settings.

    fresh                         empty every table
    enqueue COUNT [--start N] [--celery] [--twice] [--single]
                                  queue messages to 0812<start…> with send_bulk(queue=True);
                                  --celery: SMSGW["CELERY"] on, so tasks are enqueued on commit;
                                  --twice: enqueue every task a second time (a duplicate
                                  delivery); --single: the first one by send_sms in a transaction
    send-due                      enqueue the periodic Celery task send_due_messages once
    report                        print JSON: counts by status, the numbers of messages not
                                  accepted, claims in progress, the batches' counts
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter


def number(index: int) -> str:
    return f"0812{index:08d}"


def enqueue(count: int, start: int, celery: bool, twice: bool, single: bool) -> None:
    from django.db import transaction

    from django_smsgw import send_bulk, send_sms
    from django_smsgw.models import SmsMessage, Status

    indexes = range(start, start + count)
    if single:
        with transaction.atomic():  # the task must be enqueued only once this commits
            send_sms(number(indexes[0]), "Kode OTP 123456", queue=True)
        indexes = indexes[1:]
    send_bulk(((number(i), f"Halo {i}") for i in indexes), queue=True)
    if twice:
        from django_smsgw import tasks

        queued = SmsMessage.objects.filter(status=Status.QUEUED).order_by("pk")
        ids = list(queued.values_list("pk", flat=True))
        for start_at in range(0, len(ids), 1000):
            tasks.send_queued_messages.delay(ids[start_at : start_at + 1000])
    print(json.dumps({"enqueued": count, "celery": celery}))


def report() -> None:
    from django.db.models import Sum

    from django_smsgw.models import SmsBatch, SmsMessage, Status

    messages = SmsMessage.objects.all()
    statuses = Counter(messages.values_list("status", flat=True))
    not_accepted: dict[str, list[str]] = {}
    for status, e164 in messages.exclude(status=Status.ACCEPTED).values_list("status", "number"):
        not_accepted.setdefault(status, []).append(e164)
    sending = messages.filter(status=Status.SENDING)
    counters = ["total", "queued", "accepted", "rejected", "failed", "unknown"]
    sums = SmsBatch.objects.aggregate(**{name: Sum(f"{name}_count") for name in counters})
    print(
        json.dumps(
            {
                "statuses": dict(statuses),
                "numbers": not_accepted,
                "sending_leased": sending.filter(lease_expires_at__isnull=False).count(),
                "sending_started": sending.filter(request_started_at__isnull=False).count(),
                "batch_counts": {name: value or 0 for name, value in sums.items()},
            }
        )
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.queue_driver")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("fresh")
    queueing = commands.add_parser("enqueue")
    queueing.add_argument("count", type=int)
    queueing.add_argument("--start", type=int, default=0)
    queueing.add_argument("--celery", action="store_true")
    queueing.add_argument("--twice", action="store_true")
    queueing.add_argument("--single", action="store_true")
    commands.add_parser("send-due")
    commands.add_parser("report")
    options = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.queue_settings")
    celery = options.command == "send-due" or getattr(options, "celery", False)
    if celery:
        os.environ["SMSGW_TEST_CELERY"] = "1"
        import tests.queue_celery_app  # noqa: F401  (the project's Celery app, as in a project)
    import django

    django.setup()
    if options.command == "fresh":
        from django.core.management import call_command

        call_command("flush", interactive=False, verbosity=0)
    elif options.command == "enqueue":
        enqueue(options.count, options.start, celery, options.twice, options.single)
    elif options.command == "send-due":
        from django_smsgw import tasks

        tasks.send_due_messages.delay()
    else:
        report()


if __name__ == "__main__":
    main(sys.argv[1:])
