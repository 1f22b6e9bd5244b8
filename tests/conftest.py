from __future__ import annotations

import pytest

from django_smsgw.backends import locmem
from django_smsgw.services.queue import balance_pauses
from django_smsgw.signals import message_status_changed
from django_smsgw.simulator import Simulator

API_KEY = "test-key"


@pytest.fixture(scope="session")
def running_simulator():
    with Simulator(api_key=API_KEY, callback_delay=0.05) as sim:
        yield sim


@pytest.fixture
def simulator(running_simulator, settings):
    """The provider simulator over real HTTP, fresh for each test, and the app pointed at it."""
    running_simulator.reset()
    settings.SMSGW = {
        **settings.SMSGW,
        "API_KEY": API_KEY,
        "BASE_URL": running_simulator.base_url,
        "BACKEND": "django_smsgw.backends.http.HttpBackend",
        "TIMEOUT": (2, 2),
    }
    yield running_simulator
    running_simulator.reset()


@pytest.fixture
def outbox():
    locmem.outbox.clear()
    yield locmem.outbox
    locmem.outbox.clear()


@pytest.fixture
def status_changes():
    """(message pk, old status, new status) for each message_status_changed sent."""
    received = []

    def receiver(sender, message, old_status, new_status, **kwargs):
        received.append((message.pk, old_status, new_status))

    message_status_changed.connect(receiver)
    yield received
    message_status_changed.disconnect(receiver)


@pytest.fixture(autouse=True)
def no_balance_pauses():
    """Each test starts with no channel paused for balance (the pause lives in the process)."""
    balance_pauses.clear()
    yield
    balance_pauses.clear()
