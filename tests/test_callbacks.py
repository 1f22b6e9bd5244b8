"""The delivery callback (SPEC §5): authentication, tolerant parsing, forward-only statuses."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from django_smsgw.models import DeliveryReport, SmsBatch, SmsMessage, Status
from django_smsgw.services.callbacks import adopt_orphan_reports, receive_reports

pytestmark = pytest.mark.django_db

SECRET = "test-secret"  # tests/settings.py
VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors"


def url(secret: str = SECRET) -> str:
    return reverse("smsgw:callback", args=[secret])


def post(client, body, *, secret=SECRET, content_type="application/json", **extra):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(url(secret), data=data, content_type=content_type, **extra)


def item(sending_id, code, number="6281234567890", text=None):
    return {
        "sendingid": sending_id,
        "number": number,
        "deliverystatus": str(code),
        "deliverystatustext": text or f"text {code}",
    }


def make_messages(count: int, *, status=Status.ACCEPTED, first_id: int = 1287265):
    batch = SmsBatch.objects.create(channel="reguler", total_count=count)
    return SmsMessage.objects.bulk_create(
        SmsMessage(
            batch=batch,
            number=f"+62812{index:08d}",
            message="Halo",
            channel="reguler",
            status=status,
            sending_id=first_id + index,
        )
        for index in range(count)
    )


def status_of(message) -> str:
    return SmsMessage.objects.get(pk=message.pk).status


def test_the_captured_provider_callback_moves_both_messages(client):
    first, second = make_messages(2)
    body = (VECTORS / "callback_two.json").read_text()
    response = post(client, body)
    assert response.status_code == 200
    assert response.json() == {"received": 2, "changed": 2, "pending": 0}
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.delivery_status, first.delivery_status_text) == (
        Status.DELIVERED,
        3,
        "Delivered Success",
    )
    assert (second.status, second.delivery_status) == (Status.UNDELIVERED, 4)
    reports = DeliveryReport.objects.order_by("pk")
    assert [r.message_id for r in reports] == [first.pk, second.pk]
    assert reports[0].raw == json.loads(body)["status_respon"][0]
    assert reports[0].remote_addr == "127.0.0.1" and reports[0].applied_at is not None


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (1, Status.SCHEDULED),
        (2, Status.SENT),
        (3, Status.DELIVERED),
        (10, Status.DELIVERED),
        (4, Status.UNDELIVERED),
        (7, Status.UNDELIVERED),
        (9, Status.REJECTED),
        (5, Status.FAILED),
        (6, Status.FAILED),
        (8, Status.FAILED),
    ],
)
def test_each_delivery_code_leads_to_its_status(client, code, status):
    (message,) = make_messages(1)
    assert post(client, {"status_respon": [item(message.sending_id, code)]}).status_code == 200
    assert status_of(message) == status


@pytest.mark.django_db(transaction=True)
def test_a_repeated_report_changes_nothing_and_is_kept(client, status_changes):
    (message,) = make_messages(1)
    body = {"status_respon": [item(message.sending_id, 3)]}
    assert post(client, body).json()["changed"] == 1
    assert post(client, body).json() == {"received": 1, "changed": 0, "pending": 0}
    assert status_of(message) == Status.DELIVERED
    assert DeliveryReport.objects.filter(message=message).count() == 2
    assert status_changes == [(message.pk, "accepted", "delivered")]


def test_a_late_sent_never_moves_a_delivered_message_back(client):
    (message,) = make_messages(1)
    post(client, {"status_respon": [item(message.sending_id, 3)]})
    post(client, {"status_respon": [item(message.sending_id, 2)]})
    message.refresh_from_db()
    assert (message.status, message.delivery_status) == (Status.DELIVERED, 3)


def test_the_first_final_status_wins(client):
    (message,) = make_messages(1)
    post(client, {"status_respon": [item(message.sending_id, 4)]})
    post(client, {"status_respon": [item(message.sending_id, 3)]})
    assert status_of(message) == Status.UNDELIVERED


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("codes", [[2, 3], [3, 2], [1, 3, 2, 4]])
def test_reports_for_one_message_in_one_post_apply_in_order(client, status_changes, codes):
    (message,) = make_messages(1)
    post(client, {"status_respon": [item(message.sending_id, c) for c in codes]})
    assert status_of(message) == Status.DELIVERED
    assert status_changes == [(message.pk, "accepted", "delivered")]


def test_an_unknown_code_is_kept_and_ignored(client):
    (message,) = make_messages(1)
    response = post(client, {"status_respon": [item(message.sending_id, 11)]})
    assert response.status_code == 200
    assert response.json()["changed"] == 0
    assert status_of(message) == Status.ACCEPTED
    assert DeliveryReport.objects.get().delivery_status == 11


@pytest.mark.django_db(transaction=True)
def test_a_report_for_an_unknown_sending_id_waits_for_its_message(client, status_changes):
    response = post(client, {"status_respon": [item(424242, 3)]})
    assert response.json() == {"received": 1, "changed": 0, "pending": 1}
    report = DeliveryReport.objects.get()
    assert report.message is None and report.applied_at is None
    (message,) = make_messages(1, first_id=424242)  # the send reply is recorded
    adopted, changes = adopt_orphan_reports([424242])
    assert adopted == {424242}
    report.refresh_from_db()
    assert report.message_id == message.pk and report.applied_at is not None
    assert status_of(message) == Status.DELIVERED
    assert status_changes == [(message.pk, "accepted", "delivered")]


@pytest.mark.parametrize(
    "body",
    [
        {"status_respon": {"sendingid": 1287265, "deliverystatus": 3}},  # a bare object
        {"Status_Respon": [{"SendingID": "1287265", "DeliveryStatus": "3"}]},  # key case
        {"status_respon": [{"sendingid": " 1287265 ", "deliverystatus": 3.0}]},  # odd numbers
    ],
)
def test_every_tolerated_shape_is_understood(client, body):
    (message,) = make_messages(1)
    assert post(client, body).status_code == 200
    assert status_of(message) == Status.DELIVERED


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_json_is_read_whatever_the_content_type(client, content_type):
    (message,) = make_messages(1)
    body = json.dumps({"status_respon": [item(message.sending_id, 2)]})
    assert post(client, body, content_type=content_type).status_code == 200
    assert status_of(message) == Status.SENT


# --- authentication -----------------------------------------------------------------------


def test_a_wrong_secret_is_403_and_stores_nothing(client):
    (message,) = make_messages(1)
    response = post(client, {"status_respon": [item(message.sending_id, 3)]}, secret="guess")
    assert response.status_code == 403
    assert not DeliveryReport.objects.exists()
    assert status_of(message) == Status.ACCEPTED


def test_a_wrong_secret_is_403_even_with_a_bad_body(client):
    assert post(client, b"\x00garbage", secret="guess").status_code == 403


def test_without_a_configured_secret_every_report_is_refused(client, settings):
    settings.SMSGW = {**settings.SMSGW, "CALLBACK_SECRET": ""}
    assert post(client, {"status_respon": [item(1, 3)]}, secret="x").status_code == 403
    assert not DeliveryReport.objects.exists()


def test_secrets_can_be_rotated(client, settings):
    settings.SMSGW = {**settings.SMSGW, "CALLBACK_SECRET": ["new-secret", "old-secret"]}
    body = {"status_respon": [item(1, 3)]}
    assert post(client, body, secret="old-secret").status_code == 200
    assert post(client, body, secret="new-secret").status_code == 200
    assert post(client, body, secret=SECRET).status_code == 403


@pytest.mark.parametrize(
    ("allowed", "remote", "forwarded", "header", "expected"),
    [
        (["203.0.113.5"], "203.0.113.5", None, "", 200),
        (["203.0.113.0/24"], "203.0.113.77", None, "", 200),
        (["203.0.113.5"], "198.51.100.1", None, "", 403),
        # A forwarded address is never believed unless the project says so.
        (["203.0.113.5"], "10.0.0.1", "203.0.113.5", "", 403),
        # With the header named, the entry the proxy appended (the last) counts.
        (["203.0.113.5"], "10.0.0.1", "1.2.3.4, 203.0.113.5", "HTTP_X_FORWARDED_FOR", 200),
        (["203.0.113.5"], "10.0.0.1", "203.0.113.5, 1.2.3.4", "HTTP_X_FORWARDED_FOR", 403),
    ],
)
def test_the_ip_allow_list(client, settings, allowed, remote, forwarded, header, expected):
    settings.SMSGW = {
        **settings.SMSGW,
        "CALLBACK_ALLOWED_IPS": allowed,
        "CALLBACK_CLIENT_IP_HEADER": header,
    }
    extra = {"REMOTE_ADDR": remote}
    if forwarded:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    response = post(client, {"status_respon": [item(1, 3)]}, **extra)
    assert response.status_code == expected
    assert DeliveryReport.objects.exists() == (expected == 200)


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete", "head", "options"])
def test_only_post_is_allowed(client, method):
    response = getattr(client, method)(url())
    assert response.status_code == 405


# --- bad input ------------------------------------------------------------------------------

BAD_BODIES = [
    (b"", "no 'status_respon'"),
    (b"   ", "empty"),
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe\x00junk\x89PNG", "not valid JSON"),
    (b"[" * 100_000, "not valid JSON"),
    (b'{"status_respon": [{"sendingid": NaN, "deliverystatus": 3}]}', "not valid JSON"),
    (b"[]", "not an object"),
    (b'"status_respon"', "not an object"),
    (b"{}", "no 'status_respon'"),
    (b'{"status_respon": []}', "non-empty"),
    (b'{"status_respon": [{"deliverystatus": 3}]}', "has no sendingid"),
    (b'{"status_respon": [{"sendingid": 5}]}', "has no deliverystatus"),
    (b'{"status_respon": [{"sendingid": 5, "deliverystatus": "abc"}]}', "not a whole number"),
    (b'{"status_respon": [{"sendingid": -5, "deliverystatus": 3}]}', "out of range"),
    (b'{"status_respon": [{"sendingid": 1e30, "deliverystatus": 3}]}', "out of range"),
    (b'{"status_respon": [{"sendingid": 5, "deliverystatus": 99999}]}', "out of range"),
    (b'{"status_respon": [{"sendingid": 5, "deliverystatus": 3, "number": {}}]}', "number"),
    (b'{"status_respon": [{"sendingid": true, "deliverystatus": 3}]}', "not a number"),
]


@pytest.mark.parametrize(("body", "reason"), BAD_BODIES)
def test_a_bad_body_is_a_400_with_a_reason_and_nothing_is_stored(client, body, reason):
    response = post(client, body)
    assert response.status_code == 400
    assert reason in json.dumps(response.json())
    assert not DeliveryReport.objects.exists()


def test_one_bad_item_rejects_the_whole_body(client):
    (message,) = make_messages(1)
    body = {"status_respon": [item(message.sending_id, 3), {"sendingid": "x"}]}
    response = post(client, body)
    assert response.status_code == 400
    assert "status_respon[1]" in json.dumps(response.json())
    assert not DeliveryReport.objects.exists()
    assert status_of(message) == Status.ACCEPTED


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
field_values = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.just("3")
    | st.lists(st.integers(), max_size=2)
)
items = st.fixed_dictionaries(
    {},
    optional={
        "sendingid": field_values,
        "SendingId": field_values,
        "deliverystatus": field_values,
        "number": field_values,
        "deliverystatustext": field_values,
    },
)
FUZZ = hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def assert_handled(response, before: int) -> None:
    assert response.status_code in (200, 400), response.content[:200]
    if response.status_code == 400:
        assert response.json()  # a reason
        assert DeliveryReport.objects.count() == before  # nothing half-stored


@FUZZ
@given(body=json_values)
def test_fuzz_any_json_value(client, body):
    before = DeliveryReport.objects.count()
    assert_handled(post(client, body), before)


@FUZZ
@given(body=st.lists(items, min_size=1, max_size=5).map(lambda xs: {"status_respon": xs}))
def test_fuzz_callback_shaped_bodies(client, body):
    before = DeliveryReport.objects.count()
    assert_handled(post(client, body), before)


@FUZZ
@given(body=st.binary(max_size=300))
def test_fuzz_raw_bytes(client, body):
    before = DeliveryReport.objects.count()
    assert_handled(post(client, body, content_type="application/octet-stream"), before)


# --- efficiency -----------------------------------------------------------------------------


def queries_for(client, items_count: int, first_id: int) -> int:
    messages = make_messages(items_count, first_id=first_id)
    body = {"status_respon": [item(m.sending_id, 3) for m in messages]}
    with CaptureQueriesContext(connection) as context:
        response = post(client, body)
    assert response.json()["changed"] == items_count
    return len(context)


def test_a_post_costs_the_same_queries_for_10_items_as_for_200(client, status_changes):
    assert queries_for(client, 10, 1_000_000) == queries_for(client, 200, 2_000_000)


# --- concurrency ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_signal_fires_after_commit_with_the_message(client, status_changes):
    (message,) = make_messages(1)
    post(client, {"status_respon": [item(message.sending_id, 2)]})
    assert status_changes == [(message.pk, "accepted", "sent")]


@pytest.mark.django_db(transaction=True)
def test_concurrent_reports_move_each_message_once(status_changes):
    """Eight callers post reports for the same messages at the same moment, in random orders.
    Meaningful on PostgreSQL (concurrent writers); SQLite serializes them."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (DATABASE_URL)")
    messages = make_messages(40)
    barrier = threading.Barrier(8)
    errors = []

    def caller(seed: int) -> None:
        rng = random.Random(seed)
        body = [item(m.sending_id, rng.choice([2, 3, 4])) for m in messages]
        rng.shuffle(body)
        try:
            barrier.wait()
            response = post(Client(), {"status_respon": body})
            assert response.status_code == 200, response.content
        except Exception as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=caller, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert DeliveryReport.objects.count() == 8 * 40
    for message in messages:
        chain = [(old, new) for pk, old, new in status_changes if pk == message.pk]
        finals = [new for _old, new in chain if new in ("delivered", "undelivered")]
        assert len(finals) == 1, chain  # the first final wins, once
        assert status_of(message) == finals[0]
        assert len(chain) == len(set(chain))  # no change reported twice


def test_receive_reports_is_usable_without_http():
    (message,) = make_messages(1)
    from django_smsgw.protocol.replies import parse_callback

    result = receive_reports(parse_callback({"status_respon": [item(message.sending_id, 3)]}))
    assert (result.received, result.changed, result.pending) == (1, 1, 0)
