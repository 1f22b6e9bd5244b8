"""End to end over real HTTP: the simulator POSTs its delivery reports to the app running under
Django's live server, with delays, duplicates and reordering."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone

from django_smsgw import send_bulk, send_sms
from django_smsgw.models import FINAL_STATUSES, DeliveryReport, SmsMessage, Status
from django_smsgw.simulator import Simulator

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "test-secret"


@pytest.fixture
def provider(live_server, settings):
    """A simulator that calls back the live server; configured per test through ``options``."""
    simulators = []

    def start(**options) -> Simulator:
        simulator = Simulator(api_key="e2e-key", **options).start()
        simulators.append(simulator)
        settings.SMSGW = {
            **settings.SMSGW,
            "API_KEY": "e2e-key",
            "BASE_URL": simulator.base_url,
            "BACKEND": "django_smsgw.backends.http.HttpBackend",
            "CALLBACK_URL": f"{live_server.url}/smsgw/callback/{SECRET}/",
            "TIMEOUT": (2, 5),
        }
        return simulator

    yield start
    for simulator in simulators:
        simulator.stop()


def wait_for(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def all_final(ids) -> bool:
    return not SmsMessage.objects.filter(pk__in=ids).exclude(status__in=FINAL_STATUSES).exists()


def test_statuses_come_out_right_through_duplicates_and_reordering(provider):
    simulator = provider(
        callback_delay=0.1, duplicates=True, reorder=True, delivery_outcomes={"99": 4}
    )
    numbers = [f"0812345{index:05d}" for index in range(28)] + ["081234500099", "081234511199"]
    batch = send_bulk((number, "Halo") for number in numbers)
    ids = list(batch.messages.values_list("pk", flat=True))
    wait_for(lambda: all_final(ids) and simulator.state()["callbacks_pending"] == 0)
    statuses = dict(batch.messages.values_list("number", "status"))
    assert statuses.pop("+6281234500099") == statuses.pop("+6281234511199") == Status.UNDELIVERED
    assert set(statuses.values()) == {Status.DELIVERED}
    state = simulator.state()
    assert state["callback_errors"] == 0
    # Every update ("Sent" and the final code) arrived twice, and every one was kept.
    assert DeliveryReport.objects.filter(message__batch=batch).count() == 30 * 2 * 2


def test_a_scheduled_message_goes_through_scheduled_sent_and_delivered(provider):
    simulator = provider(callback_delay=0.1)
    message = send_sms("081234567890", "Nanti", send_at=timezone.now() + dt.timedelta(seconds=2))
    wait_for(lambda: SmsMessage.objects.get(pk=message.pk).status == Status.SCHEDULED)
    wait_for(lambda: SmsMessage.objects.get(pk=message.pk).status == Status.DELIVERED)
    codes = list(
        DeliveryReport.objects.filter(message=message)
        .order_by("pk")
        .values_list("delivery_status", flat=True)
    )
    assert codes == [1, 2, 3]
    assert simulator.state()["callback_errors"] == 0


def test_a_report_that_arrives_before_the_send_reply_is_applied(provider):
    simulator = provider(callback_delay=0.05)
    simulator.inject("slow", seconds=1.0)  # the reports are POSTed while we wait for the reply
    message = send_sms("081234567890", "Halo")
    wait_for(lambda: SmsMessage.objects.get(pk=message.pk).status == Status.DELIVERED)
    early = DeliveryReport.objects.get(message=message, delivery_status=2)
    # It was received while the message had no sending id yet, and applied once it had.
    assert (early.applied_at - early.received_at).total_seconds() > 0.3
    message.refresh_from_db()
    assert message.delivery_status == 3
