"""Delivery callbacks through the view, in-process (Django's test client), on SQLite.

Prints status updates per second for 1 and for 100 items per POST, each update moving an
accepted message to delivered. Run from the repository root: python benchmarks/callbacks.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import setup_django  # noqa: E402

RUNS = {1: 2_000, 100: 20_000}  # items per POST -> updates in the run


def make_messages(count: int, first_id: int) -> list[int]:
    from django_smsgw.models import SmsBatch, SmsMessage, Status

    batch = SmsBatch.objects.create(channel="reguler", total_count=count)
    SmsMessage.objects.bulk_create(
        (
            SmsMessage(
                batch=batch,
                number="+6281234567890",
                message="Halo",
                channel="reguler",
                status=Status.ACCEPTED,
                sending_id=first_id + index,
            )
            for index in range(count)
        ),
        batch_size=500,
    )
    return list(range(first_id, first_id + count))


def run(per_post: int, updates: int, first_id: int) -> None:
    from django.test import Client

    from django_smsgw.models import SmsMessage, Status

    sending_ids = make_messages(updates, first_id)
    bodies = [
        json.dumps(
            {
                "status_respon": [
                    {
                        "sendingid": sid,
                        "number": "6281234567890",
                        "deliverystatus": "3",
                        "deliverystatustext": "Delivered Success",
                    }
                    for sid in sending_ids[start : start + per_post]
                ]
            }
        )
        for start in range(0, updates, per_post)
    ]
    client = Client()
    started = time.perf_counter()
    for body in bodies:
        response = client.post("/smsgw/callback/bench/", data=body, content_type="application/json")
        assert response.status_code == 200, response.content
    elapsed = time.perf_counter() - started
    delivered = SmsMessage.objects.filter(
        sending_id__in=sending_ids, status=Status.DELIVERED
    ).count()
    assert delivered == updates, delivered
    print(
        f"{per_post:>3} item(s) per POST: {updates:,} updates in {elapsed:.2f} s = "
        f"{updates / elapsed:,.0f} status updates/s ({len(bodies) / elapsed:,.0f} POSTs/s)"
    )


def main() -> None:
    setup_django("http://127.0.0.1:9")  # no provider needed
    from django.conf import settings

    settings.ALLOWED_HOSTS = ["*"]
    first_id = 1
    for per_post, updates in RUNS.items():
        run(per_post, updates, first_id)
        first_id += updates


if __name__ == "__main__":
    main()
