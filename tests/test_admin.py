"""The admin (SPEC §6): watch, search, resend and check the balance, as staff with and without
the permissions, as a superuser and anonymously."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.db import connection
from django.forms.models import model_to_dict
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_smsgw import send_bulk
from django_smsgw.admin import LargeTablePaginator
from django_smsgw.models import BalanceSnapshot, DeliveryReport, SmsBatch, SmsMessage, Status

pytestmark = pytest.mark.django_db

MESSAGES = reverse("admin:django_smsgw_smsmessage_changelist")
BATCHES = reverse("admin:django_smsgw_smsbatch_changelist")
REPORTS = reverse("admin:django_smsgw_deliveryreport_changelist")
SNAPSHOTS = reverse("admin:django_smsgw_balancesnapshot_changelist")
CHECK_BALANCE = reverse("admin:django_smsgw_balancesnapshot_check")


# -- people and records ----------------------------------------------------------------------


def staff_client(*codenames: str) -> Client:
    user = User.objects.create_user(f"staff-{'-'.join(codenames) or 'none'}", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="django_smsgw", codename__in=codenames)
    )
    client = Client()
    client.force_login(user)
    return client


VIEW_ALL = ("view_smsmessage", "view_smsbatch", "view_deliveryreport", "view_balancesnapshot")


@pytest.fixture
def viewer() -> Client:
    """Staff who may look at everything, and do nothing."""
    return staff_client(*VIEW_ALL)


@pytest.fixture
def resender() -> Client:
    return staff_client("view_smsmessage", "resend_smsmessage")


@pytest.fixture
def balance_checker() -> Client:
    return staff_client("view_balancesnapshot", "add_balancesnapshot")


def make_message(number: str = "+6281234567890", **fields) -> SmsMessage:
    channel = fields.pop("channel", "reguler")
    batch = fields.pop("batch", None) or SmsBatch.objects.create(channel=channel, total_count=1)
    fields.setdefault("message", "Kode OTP Anda 123456")
    fields.setdefault("status", Status.ACCEPTED)
    return SmsMessage.objects.create(batch=batch, channel=channel, number=number, **fields)


def listed(response) -> list[SmsMessage]:
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def flash(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m.message)) for m in get_messages(response.wsgi_request)]


def action(client: Client, messages: list[SmsMessage], **extra):
    return client.post(
        MESSAGES,
        {
            "action": "resend_messages",
            "_selected_action": [m.pk for m in messages],
            "index": 0,
            **extra,
        },
        follow=True,
    )


# -- who may do what -------------------------------------------------------------------------


def every_app_url() -> list[tuple[str, str]]:
    """(method, url) for every admin URL the app adds, with a record behind each change page."""
    message = make_message()
    report = DeliveryReport.objects.create(message=message, sending_id=1, raw={})
    snapshot = BalanceSnapshot.objects.create(channel="otp", balance=5)
    urls = [("get", MESSAGES), ("get", BATCHES), ("get", REPORTS), ("get", SNAPSHOTS)]
    for model, pk in [
        ("smsmessage", message.pk),
        ("smsbatch", message.batch_id),
        ("deliveryreport", report.pk),
        ("balancesnapshot", snapshot.pk),
    ]:
        urls.append(("get", reverse(f"admin:django_smsgw_{model}_change", args=[pk])))
        urls.append(("get", reverse(f"admin:django_smsgw_{model}_history", args=[pk])))
    urls += [
        ("get", CHECK_BALANCE),
        ("post", CHECK_BALANCE),
        ("post", MESSAGES),  # with the resend action
    ]
    return urls


def test_anonymous_users_are_sent_to_login_from_every_url_and_nothing_happens(client, simulator):
    message = make_message()
    data = {"action": "resend_messages", "_selected_action": [message.pk], "index": 0}
    for method, url in every_app_url():
        response = getattr(client, method)(url, data if method == "post" else None)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login")), url
    assert SmsMessage.objects.count() == 2  # no resend
    assert BalanceSnapshot.objects.count() == 1  # no check
    assert simulator.state()["requests"] == 0


def test_staff_without_view_permission_see_nothing(simulator):
    client = staff_client()
    for method, url in every_app_url():
        if url == CHECK_BALANCE:
            continue
        assert getattr(client, method)(url).status_code == 403, url


def test_the_superuser_can_open_every_page(admin_client):
    for method, url in every_app_url():
        if method == "get" and url != CHECK_BALANCE:
            assert admin_client.get(url).status_code == 200, url


@pytest.mark.parametrize("model", ["smsmessage", "smsbatch", "deliveryreport", "balancesnapshot"])
def test_records_cannot_be_added_changed_or_deleted_even_by_the_superuser(admin_client, model):
    message = make_message()
    records = {
        "smsmessage": message,
        "smsbatch": message.batch,
        "deliveryreport": DeliveryReport.objects.create(message=message, raw={}),
        "balancesnapshot": BalanceSnapshot.objects.create(channel="otp", balance=5),
    }
    record = records[model]
    before = model_to_dict(record)
    assert admin_client.get(reverse(f"admin:django_smsgw_{model}_add")).status_code == 403
    change = reverse(f"admin:django_smsgw_{model}_change", args=[record.pk])
    form = {key: value for key, value in before.items() if value is not None}
    assert admin_client.post(change, {**form, "number": "+6289999999999"}).status_code == 403
    delete = reverse(f"admin:django_smsgw_{model}_delete", args=[record.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert model_to_dict(type(record).objects.get(pk=record.pk)) == before


def test_the_message_page_shows_no_editable_field(admin_client):
    message = make_message()
    page = admin_client.get(reverse("admin:django_smsgw_smsmessage_change", args=[message.pk]))
    html = page.content.decode()
    assert message.message in html
    for field in ("number", "message", "status", "channel", "sending_id", "price"):
        assert f'name="{field}"' not in html


# -- the message list ------------------------------------------------------------------------


def test_the_message_list_answers_what_happened(viewer):
    message = make_message(
        status=Status.UNDELIVERED,
        sending_id=1287265,
        price=Decimal("320"),
        delivery_status=4,
        delivery_status_text="Delivered Error",
    )
    html = viewer.get(MESSAGES).content.decode()
    assert "+6281234567890" in html
    assert "undelivered" in html
    assert "4 Delivered Error" in html
    assert "320" in html
    batch_url = reverse("admin:django_smsgw_smsbatch_change", args=[message.batch_id])
    assert f'href="{batch_url}"' in html
    headers = re.findall(
        r'<th scope="col" class="sortable[^"]*">.*?<a href="[^"]*">([^<]+)</a>', html, re.S
    )
    assert headers == [
        "Created at",
        "Number (E.164)",
        "Channel",
        "Status",
        "Delivery status",
        "Price",
        "Batch",
    ]


@pytest.mark.parametrize(
    "typed",
    [
        "+6281234567890",
        "0812-3456-7890",
        "081234567890",
        "+62 812 3456 7890",
        "6281234567890",
        "62 812-3456-7890",
        "(0812) 3456 7890",
        " 0812 3456 7890 ",
    ],
)
def test_search_finds_a_number_however_it_is_typed(viewer, typed):
    wanted = make_message("+6281234567890")
    make_message("+6285712345678")
    make_message("+6281234567899")
    assert listed(viewer.get(MESSAGES, {"q": typed})) == [wanted]


@pytest.mark.parametrize(("typed", "expected"), [("0812", 2), ("345-6789", 2), ("0857", 1)])
def test_search_by_part_of_a_number(viewer, typed, expected):
    make_message("+6281234567890")
    make_message("+6281234567899")
    make_message("+6285712345678")
    assert len(listed(viewer.get(MESSAGES, {"q": typed}))) == expected


def test_search_by_sending_id_is_exact(viewer):
    wanted = make_message("+6281234567890", sending_id=1287265)
    make_message("+6285712345678", sending_id=12872650)
    assert listed(viewer.get(MESSAGES, {"q": "1287265"})) == [wanted]
    assert listed(viewer.get(MESSAGES, {"q": "128726"})) == []


def test_search_with_no_digits_finds_nothing_and_does_not_fail(viewer):
    make_message()
    assert listed(viewer.get(MESSAGES, {"q": "halo"})) == []


def test_a_huge_number_is_not_taken_for_a_sending_id(viewer):
    assert listed(viewer.get(MESSAGES, {"q": "9" * 30})) == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status__exact": "failed"}, ["failed-otp"]),
        ({"channel__exact": "otp"}, ["failed-otp"]),
        ({"status__exact": "delivered", "channel__exact": "reguler"}, ["delivered-reguler"]),
        (
            {
                "created_at__gte": "2000-01-01 00:00:00+00:00",
                "created_at__lt": "2000-01-02 00:00:00+00:00",
            },
            ["old"],
        ),
    ],
)
def test_the_message_list_filters_by_status_channel_and_date(viewer, query, expected):
    make_message(message="failed-otp", status=Status.FAILED, channel="otp")
    make_message(message="delivered-reguler", status=Status.DELIVERED)
    old = make_message(message="old", status=Status.SENT)
    SmsMessage.objects.filter(pk=old.pk).update(
        created_at=dt.datetime(2000, 1, 1, 12, tzinfo=dt.UTC)
    )
    assert [m.message for m in listed(viewer.get(MESSAGES, query))] == expected


def test_the_batch_page_links_to_exactly_its_messages(viewer):
    first = make_message("+6281234567890")
    make_message("+6285712345678")
    page = viewer.get(reverse("admin:django_smsgw_smsbatch_change", args=[first.batch_id]))
    link = re.search(r'href="([^"]*batch__id__exact=\d+)"', page.content.decode()).group(1)
    assert listed(viewer.get(link.replace("&amp;", "&"))) == [first]


# -- a message's page ------------------------------------------------------------------------


def test_the_message_page_shows_provider_data_and_reports_read_only(viewer):
    message = make_message(
        sending_id=1287265,
        sending_status=10,
        sending_status_text="success",
        provider_reply={"number": "6281234567890", "sendingid": 1287265, "price": 320},
        error="",
    )
    raw = {"sendingid": 1287265, "deliverystatus": "3", "deliverystatustext": "Delivered Success"}
    DeliveryReport.objects.create(
        message=message, sending_id=1287265, delivery_status=3, raw=raw, number="6281234567890"
    )
    page = viewer.get(reverse("admin:django_smsgw_smsmessage_change", args=[message.pk]))
    html = page.content.decode()
    assert "10 success" in html
    assert "&quot;sendingid&quot;: 1287265" in html  # the reply, pretty-printed
    assert "&quot;deliverystatustext&quot;: &quot;Delivered Success&quot;" in html  # the report
    [inline] = page.context["inline_admin_formsets"]
    assert inline.formset.model is DeliveryReport
    assert not inline.has_add_permission and not inline.has_delete_permission
    assert not inline.has_change_permission
    assert 'name="reports-0-raw"' not in html


def test_the_message_page_links_the_original_and_its_resends(viewer):
    original = make_message()
    copy = make_message(resent_from=original)
    page = viewer.get(reverse("admin:django_smsgw_smsmessage_change", args=[original.pk]))
    assert reverse("admin:django_smsgw_smsmessage_change", args=[copy.pk]) in page.content.decode()
    page = viewer.get(reverse("admin:django_smsgw_smsmessage_change", args=[copy.pk]))
    assert reverse("admin:django_smsgw_smsmessage_change", args=[original.pk]) in (
        page.content.decode()
    )


# -- resend ----------------------------------------------------------------------------------


def test_resend_sends_linked_copies_and_reports_how_many_went_out(resender, simulator):
    originals = [
        make_message("+6281234567890", status=Status.FAILED),
        make_message("+6285712345678"),
    ]
    before = [model_to_dict(m) for m in originals]
    response = action(resender, originals)

    copies = SmsMessage.objects.filter(resent_from__in=originals).order_by("resent_from")
    assert [(c.resent_from_id, c.number, c.status) for c in copies] == [
        (originals[0].pk, "+6281234567890", Status.ACCEPTED),
        (originals[1].pk, "+6285712345678", Status.ACCEPTED),
    ]
    assert copies[0].batch.kind == SmsBatch.Kind.RESEND
    assert [model_to_dict(SmsMessage.objects.get(pk=m.pk)) for m in originals] == before
    [(level, text)] = flash(response)
    assert level == "success"
    assert "Resent 2 messages: 2 accepted by the provider, 0 not." in text
    assert simulator.state()["packets_accepted"] == 2


def test_the_superuser_can_resend(admin_client, outbox):
    action(admin_client, [make_message()])
    assert len(outbox) == 1


def test_resend_reports_failures_with_the_reason(resender, simulator):
    simulator.inject("global", code=30)
    response = action(resender, [make_message()])
    [(level, text)] = flash(response)
    assert level == "error"
    assert "Resent 1 message: 0 accepted by the provider, 1 not." in text
    assert "30 ApiKey not register" in text
    assert SmsMessage.objects.get(resent_from__isnull=False).status == Status.REJECTED


def test_resend_reports_a_partial_failure_as_a_warning(resender, simulator):
    simulator.inject("global", code=40)  # the first request: the reguler batch
    response = action(resender, [make_message(channel="reguler"), make_message(channel="otp")])
    [(level, text)] = flash(response)
    assert level == "warning"
    assert "Resent 2 messages: 1 accepted by the provider, 1 not." in text


def test_resend_across_all_pages_resends_every_match_of_the_filters(resender, outbox):
    failed = [make_message(status=Status.FAILED) for _ in range(3)]
    make_message(status=Status.DELIVERED)
    resender.post(
        MESSAGES + "?status__exact=failed",
        {
            "action": "resend_messages",
            "_selected_action": [failed[0].pk],
            "select_across": 1,
            "index": 0,
        },
    )
    assert len(outbox) == 3
    assert set(SmsMessage.objects.values_list("resent_from", flat=True)) == {
        None,
        *[m.pk for m in failed],
    }


def test_a_get_never_resends(resender, outbox):
    message = make_message()
    resender.get(
        MESSAGES, {"action": "resend_messages", "_selected_action": message.pk, "index": 0}
    )
    assert outbox == [] and SmsMessage.objects.count() == 1


def test_resend_needs_a_csrf_token(outbox):
    user = User.objects.create_superuser("csrf-admin")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = action(client, [make_message()])
    assert response.status_code == 403
    assert outbox == [] and SmsMessage.objects.count() == 1


def action_names(response) -> list[str]:
    form = response.context["action_form"]
    return [] if form is None else [name for name, _ in form.fields["action"].choices if name]


def test_only_staff_with_the_permission_see_the_action(viewer, resender, admin_client):
    make_message()
    assert action_names(viewer.get(MESSAGES)) == []
    assert action_names(resender.get(MESSAGES)) == ["resend_messages"]
    assert action_names(admin_client.get(MESSAGES)) == ["resend_messages"]


def test_staff_without_the_permission_cannot_forge_a_resend(viewer, outbox):
    message = make_message()
    action(viewer, [message])
    assert outbox == [] and SmsMessage.objects.count() == 1


# -- balance ---------------------------------------------------------------------------------


def test_the_check_button_shows_only_to_who_may_check(viewer, balance_checker):
    assert CHECK_BALANCE not in viewer.get(SNAPSHOTS).content.decode()
    html = balance_checker.get(SNAPSHOTS).content.decode()
    form = re.search(r'<form method="post" action="([^"]+)"[^>]*>(.*?)</form>', html, re.S)
    assert form.group(1) == CHECK_BALANCE
    assert 'name="csrfmiddlewaretoken"' in form.group(2)
    assert "Check balance now" in form.group(2)


def test_check_balance_now_checks_every_channel(balance_checker, simulator):
    response = balance_checker.post(CHECK_BALANCE, follow=True)
    assert response.redirect_chain == [(SNAPSHOTS, 302)]
    balances = simulator.state()["balances"]
    snapshots = {s.channel: s for s in BalanceSnapshot.objects.all()}
    assert sorted(snapshots) == ["masking", "otp", "reguler"]
    assert all(snapshots[c].balance == balances[c] for c in snapshots)
    reports = flash(response)
    assert [level for level, _ in reports] == ["success"] * 3
    assert f"otp: balance {balances['otp']:,}" in reports[2][1]


def test_check_balance_now_for_one_channel(admin_client, simulator):
    admin_client.post(CHECK_BALANCE, {"channel": "otp"})
    assert list(BalanceSnapshot.objects.values_list("channel", flat=True)) == ["otp"]
    assert simulator.state()["requests"] == 1


def test_a_refused_check_is_reported_and_stored(balance_checker, simulator):
    simulator.inject("global", code=35, endpoint="balance")
    response = balance_checker.post(CHECK_BALANCE, {"channel": "reguler"}, follow=True)
    [(level, text)] = flash(response)
    assert level == "error" and "35 Check Balance Limit" in text
    assert BalanceSnapshot.objects.get().global_status == 35


def test_an_unknown_channel_checks_nothing(balance_checker, simulator):
    response = balance_checker.post(CHECK_BALANCE, {"channel": "bulk"}, follow=True)
    assert flash(response) == [("error", "Unknown channel 'bulk'.")]
    assert simulator.state()["requests"] == 0


def test_check_balance_is_post_only(balance_checker, simulator):
    assert balance_checker.get(CHECK_BALANCE).status_code == 405
    assert not BalanceSnapshot.objects.exists() and simulator.state()["requests"] == 0


def test_check_balance_needs_the_permission(viewer, simulator):
    assert viewer.post(CHECK_BALANCE).status_code == 403
    assert not BalanceSnapshot.objects.exists() and simulator.state()["requests"] == 0


def test_check_balance_needs_a_csrf_token(simulator):
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.create_superuser("csrf-admin"))
    assert client.post(CHECK_BALANCE).status_code == 403
    assert simulator.state()["requests"] == 0


def snapshot_at(channel: str, balance, minutes: int, **fields) -> BalanceSnapshot:
    snapshot = BalanceSnapshot.objects.create(channel=channel, balance=balance, **fields)
    at = timezone.now() - dt.timedelta(minutes=100 - minutes)
    BalanceSnapshot.objects.filter(pk=snapshot.pk).update(checked_at=at)
    return snapshot


def test_the_snapshot_list_shows_how_each_channels_balance_moved(viewer):
    snapshot_at("reguler", 1000, 1)
    snapshot_at("otp", 5000, 2)
    snapshot_at("reguler", None, 3, global_status=35, error="Check Balance Limit")
    snapshot_at("reguler", 680, 4)
    snapshot_at("otp", 6000, 5)
    rows = viewer.get(SNAPSHOTS).context["cl"].result_list
    shown = [(s.channel, s.balance_change) for s in rows]  # newest first
    assert shown == [
        ("otp", Decimal("1000")),
        ("reguler", Decimal("-320")),  # since the previous successful check
        ("reguler", None),
        ("otp", None),
        ("reguler", None),
    ]
    html = viewer.get(SNAPSHOTS).content.decode()
    assert "+1,000.00" in html and "-320.00" in html


def test_the_snapshot_list_makes_the_same_queries_for_5_or_50_rows(viewer):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert viewer.get(SNAPSHOTS).status_code == 200
        return len(captured)

    for minute in range(5):
        snapshot_at("reguler", 1000 - minute, minute)
    few = queries()
    for minute in range(5, 50):
        snapshot_at("otp", 1000 - minute, minute)
    assert queries() == few


# -- batches and reports ---------------------------------------------------------------------


def test_the_batch_page_shows_counts_and_the_provider_requests(viewer, simulator):
    batch = send_bulk([("081234567890", "Halo"), ("12345", "invalid number")])
    page = viewer.get(reverse("admin:django_smsgw_smsbatch_change", args=[batch.pk]))
    html = page.content.decode()
    for label, value in [("Total count", 2), ("Accepted count", 1), ("Rejected count", 1)]:
        assert re.search(rf"{label}:</label>\s*<div class=\"readonly\">{value}</div>", html)
    table = re.search(r"<table><thead>.*?</table>", html, re.S).group(0)
    assert "<td>10 Success</td>" in table  # global status
    assert "<td>200</td>" in table  # HTTP status
    assert "<td>1</td>" in table  # messages in the request


def test_the_batch_list_shows_counts_by_outcome(viewer, outbox):
    send_bulk([("081234567890", "Halo"), ("12345", "invalid number")])
    [batch] = viewer.get(BATCHES).context["cl"].result_list
    assert (batch.total_count, batch.accepted_count, batch.rejected_count) == (2, 1, 1)


def test_delivery_reports_filter_by_status_and_search_by_sending_id(viewer):
    delivered = DeliveryReport.objects.create(sending_id=1287265, delivery_status=3, raw={})
    failed = DeliveryReport.objects.create(sending_id=1287266, delivery_status=5, raw={})
    assert listed(viewer.get(REPORTS, {"delivery_status": "3"})) == [delivered]
    assert listed(viewer.get(REPORTS, {"q": "1287266"})) == [failed]
    assert listed(viewer.get(REPORTS, {"delivery_status": "x"})) == []


def test_a_report_page_shows_its_raw_body_pretty_printed(viewer):
    raw = {"sendingid": "1287265", "deliverystatus": "3", "number": "6281234567890"}
    report = DeliveryReport.objects.create(sending_id=1287265, delivery_status=3, raw=raw)
    page = viewer.get(reverse("admin:django_smsgw_deliveryreport_change", args=[report.pk]))
    html = page.content.decode()
    assert re.search(r"<pre>\{\n  &quot;", html)  # indented, one key per line
    for key, value in raw.items():
        assert f"&quot;{key}&quot;: &quot;{value}&quot;" in html
    assert "not known yet" in html  # no message matched


# -- a large table ---------------------------------------------------------------------------


def fill_messages(total: int) -> None:
    """``total`` messages, fast: 1,000 through the ORM, then the table doubles itself in SQL."""
    batch = SmsBatch.objects.create(channel="reguler")
    statuses = [Status.DELIVERED, Status.FAILED, Status.ACCEPTED, Status.UNDELIVERED]
    SmsMessage.objects.bulk_create(
        SmsMessage(
            batch=batch,
            number=f"+62812{index:08d}",
            message="Halo",
            channel="reguler",
            status=statuses[index % len(statuses)],
        )
        for index in range(min(total, 1000))
    )
    table = SmsMessage._meta.db_table
    columns = ", ".join(
        connection.ops.quote_name(field.column)
        for field in SmsMessage._meta.concrete_fields
        if not field.primary_key and field.name != "sending_id"  # unique
    )
    with connection.cursor() as cursor:
        while (count := SmsMessage.objects.count()) < total:
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {table} "
                f"ORDER BY id LIMIT {min(count, total - count)}"
            )
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {table}")  # what autovacuum does for a real table


@pytest.fixture
def large_table():
    """``fill_messages``; on PostgreSQL the planner's statistics outlive the test's rollback,
    so they are taken again on an empty table afterwards."""
    yield fill_messages
    if connection.vendor == "postgresql":
        table = SmsMessage._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table}")
            cursor.execute(f"ANALYZE {table}")


@pytest.fixture
def hundred_thousand_messages(large_table):
    large_table(100_000)
    assert SmsMessage.objects.count() == 100_000


def count_queries(captured) -> list[str]:
    return [q["sql"] for q in captured if "COUNT(" in q["sql"].upper() or "reltuples" in q["sql"]]


def assert_no_whole_table_count(captured) -> None:
    for sql in count_queries(captured):
        assert "reltuples" in sql or "LIMIT" in sql.upper(), sql


@pytest.mark.parametrize(
    "query",
    [{}, {"status__exact": "failed"}, {"q": "0812"}, {"p": "5"}],
    ids=["unfiltered", "filtered", "searched", "page-5"],
)
def test_the_message_list_of_100000_rows_makes_few_queries_and_no_whole_count(
    admin_client, hundred_thousand_messages, django_assert_max_num_queries, query
):
    # The session, the user, one bounded count, the page (with its batches joined).
    with django_assert_max_num_queries(4) as captured:
        response = admin_client.get(MESSAGES, query)
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 100
    assert len(count_queries(captured)) == 1
    assert_no_whole_table_count(captured)
    html = response.content.decode()
    assert re.search(r"(about 100000|more than 10000) SMS messages", html)
    assert "Select all matching SMS messages" in html


def test_the_message_list_makes_as_many_queries_for_100000_rows_as_for_ten(
    admin_client, large_table
):
    large_table(10)
    with CaptureQueriesContext(connection) as few:
        admin_client.get(MESSAGES)
    large_table(100_000)
    with CaptureQueriesContext(connection) as many:
        admin_client.get(MESSAGES)
    # PostgreSQL may skip the bounded count once its estimate is large: one query fewer.
    assert len(many) <= len(few)


def test_a_small_table_is_counted_exactly(viewer):
    for _ in range(3):
        make_message()
    response = viewer.get(MESSAGES)
    assert response.context["cl"].result_count == 3
    assert not response.context["cl"].paginator.approximate
    assert "3 SMS messages" in response.content.decode()


def test_a_count_past_the_limit_is_reported_as_a_lower_bound(viewer, monkeypatch):
    monkeypatch.setattr(LargeTablePaginator, "count_limit", 5)
    for _ in range(7):
        make_message(status=Status.FAILED)
    response = viewer.get(MESSAGES, {"status__exact": "failed"})
    assert response.context["cl"].result_count == 5
    assert response.context["cl"].paginator.approximate == "more"
    assert "more than 5 SMS messages" in response.content.decode()


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL)")
def test_on_postgresql_the_unfiltered_count_is_the_planner_estimate(
    admin_client, hundred_thousand_messages
):
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(MESSAGES)
    assert response.context["cl"].paginator.approximate == "estimate"
    assert abs(response.context["cl"].result_count - 100_000) < 5_000
    [count] = count_queries(captured)
    assert "reltuples" in count and "COUNT(" not in count.upper()
