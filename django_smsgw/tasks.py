"""Celery tasks (the optional extra ``django-smsgw[celery]``): thin wrappers over the queue.

Nothing imports this module unless Celery is in use: ``send_sms``/``send_bulk`` import it only
when ``SMSGW["CELERY"]`` is on, and Celery's ``autodiscover_tasks()`` finds it by name.

- ``send_queued_messages(message_ids)`` is enqueued by ``send_sms``/``send_bulk(queue=True)``
  once their transaction commits (ids only, ≤1,000 per task). It claims only the messages still
  queued and due, so a task delivered twice, or racing another worker, sends nothing twice.
- ``send_due_messages()`` is for Celery beat (e.g. every minute): it sweeps expired claims and
  sends whatever is left queued — messages stored without a task, retries that came due,
  channels whose balance pause ended, tasks lost with their broker.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from .services import queue


@shared_task(name="django_smsgw.send_queued_messages", ignore_result=True, acks_late=True)
def send_queued_messages(message_ids: list[int]) -> dict[str, Any]:
    report = queue.send_queued_messages(ids=message_ids)
    if report.retry_at is not None:
        # The provider was unreachable: come back when the back-off ends rather than wait for
        # the next beat. Only messages still queued and due then are claimed.
        send_queued_messages.apply_async((message_ids,), eta=report.retry_at)
    return report.summary()


@shared_task(name="django_smsgw.send_due_messages", ignore_result=True)
def send_due_messages() -> dict[str, Any]:
    swept = queue.sweep_expired_leases()
    report = queue.send_queued_messages()
    return {**report.summary(), "swept_requeued": swept.requeued, "swept_unknown": swept.unknown}
