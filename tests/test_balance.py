"""check_balance (SPEC §3): every check is stored, successful or not."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from django_smsgw import check_balance
from django_smsgw.exceptions import GatewayRefused, OutcomeUnknown
from django_smsgw.models import BalanceSnapshot

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("channel", ["reguler", "masking", "otp"])
def test_check_balance_stores_each_channels_balance_and_expiry(simulator, channel):
    snapshot = check_balance(channel)
    expected = simulator.state()["balances"][channel]
    stored = BalanceSnapshot.objects.get(pk=snapshot.pk)
    assert stored.channel == channel
    assert stored.balance == Decimal(expected)
    assert stored.expires_on > dt.date.today()
    assert stored.ok and stored.global_status == 10
    assert stored.raw["balance_respon"][0]["Balance"] == expected


def test_the_balance_goes_down_by_the_price_of_what_was_sent(simulator):
    from django_smsgw import send_sms

    before = check_balance("otp").balance
    message = send_sms("081234567890", "Kode 1", channel="otp")
    assert check_balance("otp").balance == before - message.price


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (20, "Json Post Error"),
        (25, "Error Check Balance"),
        (30, "ApiKey not register"),
        (35, "Check Balance Limit"),
        (40, "Ip address not register"),
        (99, "unknown code 99"),
    ],
)
def test_a_refused_check_is_stored_then_raised(simulator, code, text):
    simulator.inject("global", code=code, endpoint="balance")
    with pytest.raises(GatewayRefused, match=text) as caught:
        check_balance()
    snapshot = caught.value.snapshot
    assert BalanceSnapshot.objects.get(pk=snapshot.pk).global_status == code
    assert snapshot.balance is None and not snapshot.ok
    assert text in snapshot.error


def test_an_unreadable_reply_is_stored_then_raised(simulator):
    simulator.inject("garbage", endpoint="balance")
    with pytest.raises(OutcomeUnknown) as caught:
        check_balance()
    assert BalanceSnapshot.objects.get().error == caught.value.reason


def test_the_development_backends_report_a_balance(outbox):
    assert check_balance().balance == Decimal("1000000")


def test_a_wrong_key_is_refused_by_the_provider(simulator, settings):
    settings.SMSGW = {**settings.SMSGW, "API_KEY": "wrong"}
    with pytest.raises(GatewayRefused, match="30 ApiKey not register"):
        check_balance("otp")
    assert BalanceSnapshot.objects.get().global_status == 30
