"""`manage.py smsgw_balance` and `manage.py smsgw_cleanup` (SPEC §6): output and exit status."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_smsgw.models import (
    FINAL_STATUSES,
    BalanceSnapshot,
    DeliveryReport,
    SmsBatch,
    SmsMessage,
    Status,
)
from django_smsgw.simulator.provider import today_in_wib

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> tuple[str, str]:
    """Run a command through call_command; (stdout, stderr). A CommandError propagates."""
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def exit_status(*args: str) -> tuple[int, str]:
    """(the exit status the shell would see, the CommandError's message)."""
    try:
        run(*args)
    except CommandError as exc:
        return exc.returncode, str(exc)
    return 0, ""


# -- smsgw_balance ---------------------------------------------------------------------------


def test_balance_prints_one_line_for_the_default_channel_and_stores_a_snapshot(simulator):
    out, err = run("smsgw_balance")
    expires = today_in_wib() + dt.timedelta(days=365)
    balance = simulator.state()["balances"]["reguler"]
    assert out == f"reguler: balance {balance} rupiah, expires {expires} (in 365 days)\n"
    assert err == ""
    snapshot = BalanceSnapshot.objects.get()
    assert (snapshot.channel, snapshot.balance, snapshot.expires_on) == (
        "reguler",
        balance,
        expires,
    )


def test_balance_of_one_channel(simulator):
    out, _ = run("smsgw_balance", "--channel", "otp")
    assert out.startswith("otp: balance ")
    assert list(BalanceSnapshot.objects.values_list("channel", flat=True)) == ["otp"]


def test_balance_of_all_channels(simulator):
    out, _ = run("smsgw_balance", "--all")
    assert [line.split(":")[0] for line in out.splitlines()] == ["reguler", "masking", "otp"]
    assert BalanceSnapshot.objects.count() == 3


def test_balance_as_json(simulator):
    out, _ = run("smsgw_balance", "--all", "--json")
    results = json.loads(out)
    balances = simulator.state()["balances"]
    assert [r["channel"] for r in results] == ["reguler", "masking", "otp"]
    for result in results:
        assert result["ok"] is True and result["error"] is None
        assert result["balance"] == balances[result["channel"]]
        assert result["days_left"] == 365 and result["warnings"] == []
        assert BalanceSnapshot.objects.get(pk=result["snapshot_id"]).channel == result["channel"]


def test_a_refused_check_exits_1_with_one_readable_line(simulator):
    simulator.inject("global", code=35, endpoint="balance")
    status, message = exit_status("smsgw_balance")
    assert status == 1
    assert (
        message == "reguler: the provider refused the reguler balance check: 35 Check Balance Limit"
    )
    assert BalanceSnapshot.objects.get().global_status == 35


def test_a_transport_failure_exits_1(simulator):
    simulator.inject("http500", endpoint="balance")
    status, message = exit_status("smsgw_balance", "--channel", "masking")
    assert status == 1 and message.startswith("masking: HTTP 500")


def test_a_refused_check_still_prints_its_json(simulator):
    simulator.inject("global", code=35, endpoint="balance")
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("smsgw_balance", "--json", stdout=out)
    [result] = json.loads(out.getvalue())
    assert result["ok"] is False and "35 Check Balance Limit" in result["error"]
    assert result["balance"] is None


def test_one_failed_channel_fails_the_run_and_the_others_are_still_checked(simulator):
    simulator.inject("global", code=35, endpoint="balance")  # the first: reguler
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("smsgw_balance", "--all", stdout=out)
    assert caught.value.returncode == 1
    assert out.getvalue().splitlines()[1].startswith("masking: balance ")
    assert BalanceSnapshot.objects.filter(balance__isnull=False).count() == 2


@pytest.mark.parametrize(("minimum", "expected"), [("10000001", 3), ("10000000", 0), ("0", 0)])
def test_a_balance_under_the_minimum_exits_3(simulator, minimum, expected):
    assert simulator.state()["balances"]["reguler"] == 10_000_000
    status, message = exit_status("smsgw_balance", "--min-balance", minimum)
    assert status == expected
    if expected:
        assert message == f"reguler: balance 10000000 is under the minimum {minimum}"


@pytest.mark.parametrize(("days", "expected"), [("365", 3), ("364", 0)])
def test_a_balance_expiring_within_the_warning_days_exits_3(simulator, days, expected):
    status, message = exit_status("smsgw_balance", "--warn-days", days)
    assert status == expected
    if expected:
        expires = today_in_wib() + dt.timedelta(days=365)
        assert message == f"reguler: balance expires on {expires}, in 365 day(s)"


def test_the_warning_is_also_on_the_channels_line(simulator):
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("smsgw_balance", "--min-balance", "20000000", stdout=out)
    assert "WARNING: balance 10000000 is under the minimum 20000000" in out.getvalue()


def test_a_failure_outranks_a_low_balance(simulator):
    simulator.inject("global", code=35, endpoint="balance")
    status, message = exit_status("smsgw_balance", "--all", "--min-balance", "20000000")
    assert status == 1
    assert "35 Check Balance Limit" in message and "masking: balance" in message


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--channel", "otp", "--all"], "not allowed with argument"),
        (["--channel", "bulk"], "invalid choice: 'bulk'"),
        (["--min-balance", "-5"], "'-5' is not an amount of 0 or more"),
        (["--min-balance", "lots"], "'lots' is not an amount"),
        (["--warn-days", "-1"], "'-1' is not a number of days of 0 or more"),
        (["--warn-days", "soon"], "'soon' is not a whole number of days"),
    ],
)
def test_bad_usage_is_refused_with_a_clear_error(simulator, args, error):
    with pytest.raises(CommandError, match=error):
        run("smsgw_balance", *args)
    assert simulator.state()["requests"] == 0


def test_bad_usage_through_call_command_options_exits_2(simulator):
    with pytest.raises(CommandError, match="use --channel or --all, not both") as caught:
        call_command("smsgw_balance", channel="otp", all=True)
    assert caught.value.returncode == 2
    with pytest.raises(CommandError, match="unknown channel 'bulk'") as caught:
        call_command("smsgw_balance", channel="bulk")
    assert caught.value.returncode == 2
    assert simulator.state()["requests"] == 0


def test_the_help_documents_the_exit_statuses():
    from django_smsgw.management.commands.smsgw_balance import Command

    text = " ".join(Command().create_parser("manage.py", "smsgw_balance").format_help().split())
    for documented in ("0 all fine", "1 the provider refused", "2 bad usage", "3 a balance is"):
        assert documented in text


# -- smsgw_balance in a real process ---------------------------------------------------------


@pytest.fixture(scope="module")
def manage(tmp_path_factory, running_simulator):
    """Run `python -m django …` in a child process: a migrated SQLite file, the simulator."""
    directory = tmp_path_factory.mktemp("manage")
    (directory / "process_settings.py").write_text(
        "from tests.settings import *  # noqa: F403\n"
        f"DATABASES = {{'default': {{'ENGINE': 'django.db.backends.sqlite3', "
        f"'NAME': {str(directory / 'db.sqlite3')!r}}}}}\n"
        "SMSGW = {'API_KEY': 'test-key', 'BASE_URL': "
        f"{running_simulator.base_url!r}, 'TIMEOUT': 5, 'CALLBACK_SECRET': 's3cret'}}\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "process_settings",
        "PYTHONPATH": os.pathsep.join([str(directory), str(ROOT)]),
    }
    env.pop("DATABASE_URL", None)

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "django", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    migrated = manage("migrate", "--verbosity", "0")
    assert migrated.returncode == 0, migrated.stderr
    return manage


def test_a_refused_check_in_a_real_process_prints_one_line_and_no_traceback(manage, simulator):
    simulator.inject("global", code=35, endpoint="balance")
    result = manage("smsgw_balance")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "CommandError: reguler: the provider refused the reguler balance check: "
        "35 Check Balance Limit"
    ]
    assert result.stdout.startswith("reguler: check failed: ")


def test_exit_statuses_in_a_real_process(manage, simulator):
    assert manage("smsgw_balance", "--all").returncode == 0
    low = manage("smsgw_balance", "--min-balance", "20000000")
    assert low.returncode == 3
    assert low.stderr.splitlines() == [
        "CommandError: reguler: balance 10000000 is under the minimum 20000000"
    ]
    usage = manage("smsgw_balance", "--channel", "bulk")
    assert usage.returncode == 2
    assert "invalid choice: 'bulk'" in usage.stderr and "Traceback" not in usage.stderr


# -- smsgw_cleanup ---------------------------------------------------------------------------

NOW = timezone.now()


def aged(record, days: float, field: str = "created_at"):
    type(record).objects.filter(pk=record.pk).update(**{field: NOW - dt.timedelta(days=days)})
    return record


def message(status: str, days: float, batch: SmsBatch | None = None, **fields) -> SmsMessage:
    batch = batch or aged(SmsBatch.objects.create(channel="reguler"), days)
    record = SmsMessage.objects.create(
        batch=batch,
        number="+6281234567890",
        message="Halo",
        channel="reguler",
        status=status,
        **fields,
    )
    return aged(record, days)


def report(days: float, message: SmsMessage | None = None) -> DeliveryReport:
    return aged(DeliveryReport.objects.create(message=message, raw={}), days, "received_at")


def test_cleanup_deletes_old_final_messages_with_their_reports(outbox):
    old = {status: message(status, 40) for status in FINAL_STATUSES}
    for record in old.values():
        report(40, record)
        report(1, record)  # a recent report of an old message goes with it
    out, _ = run("smsgw_cleanup", "--days", "30")
    assert not SmsMessage.objects.exists() and not DeliveryReport.objects.exists()
    assert out == (
        "Deleted 4 final message(s) older than 30 day(s) with 8 delivery report(s), "
        "0 unmatched delivery report(s) and 4 empty batch(es).\n"
    )


@pytest.mark.parametrize("status", sorted(set(Status.values) - set(FINAL_STATUSES)))
def test_cleanup_never_deletes_a_message_that_is_not_final(status):
    kept = message(status, 400)
    kept_report = report(400, kept)
    run("smsgw_cleanup", "--days", "1")
    assert SmsMessage.objects.filter(pk=kept.pk).exists()
    assert DeliveryReport.objects.filter(pk=kept_report.pk).exists()
    assert SmsBatch.objects.filter(pk=kept.batch_id).exists()


def test_cleanup_keeps_recent_final_messages():
    recent = message(Status.DELIVERED, 29)
    message(Status.DELIVERED, 31)
    run("smsgw_cleanup", "--days", "30")
    assert list(SmsMessage.objects.all()) == [recent]


def test_cleanup_deletes_old_unmatched_reports_only():
    kept_message = message(Status.SENT, 100)
    matched = report(100, kept_message)
    recent_orphan = report(5)
    report(100)
    out, _ = run("smsgw_cleanup", "--days", "30")
    assert set(DeliveryReport.objects.all()) == {matched, recent_orphan}
    assert "1 unmatched delivery report(s)" in out


def test_cleanup_deletes_only_batches_left_empty_and_old():
    old_batch = aged(SmsBatch.objects.create(channel="reguler"), 40)
    message(Status.DELIVERED, 40, batch=old_batch)
    mixed = aged(SmsBatch.objects.create(channel="reguler"), 40)
    message(Status.DELIVERED, 40, batch=mixed)
    message(Status.QUEUED, 40, batch=mixed)
    just_created = SmsBatch.objects.create(channel="reguler")  # send_bulk fills it next
    run("smsgw_cleanup", "--days", "30")
    assert set(SmsBatch.objects.all()) == {mixed, just_created}
    assert mixed.messages.get().status == Status.QUEUED


def test_cleanup_keeps_the_resends_of_a_deleted_original():
    original = message(Status.FAILED, 40)
    copy = message(Status.ACCEPTED, 1, resent_from=original)
    run("smsgw_cleanup", "--days", "30")
    copy.refresh_from_db()
    assert copy.resent_from is None


def test_cleanup_deletes_in_batches_of_the_given_size():
    batch = aged(SmsBatch.objects.create(channel="reguler"), 40)
    for _ in range(5):
        report(40, message(Status.DELIVERED, 40, batch=batch))
    with CaptureQueriesContext(connection) as captured:
        out, _ = run("smsgw_cleanup", "--days", "30", "--batch-size", "2")
    table = SmsMessage._meta.db_table
    deletes = [q["sql"] for q in captured if q["sql"].startswith(f'DELETE FROM "{table}"')]
    ids = [re.search(r'"id" IN \(([^)]*)\)', sql).group(1).split(",") for sql in deletes]
    assert [len(chunk) for chunk in ids] == [2, 2, 1]
    assert out.startswith("Deleted 5 final message(s)")


def test_a_dry_run_counts_and_deletes_nothing():
    old_batch = aged(SmsBatch.objects.create(channel="reguler"), 40)
    report(40, message(Status.DELIVERED, 40, batch=old_batch))
    message(Status.REJECTED, 40)
    message(Status.QUEUED, 40)
    report(40)
    before = (SmsMessage.objects.count(), DeliveryReport.objects.count(), SmsBatch.objects.count())
    out, _ = run("smsgw_cleanup", "--days", "30", "--dry-run")
    assert out == (
        "Would delete 2 final message(s) older than 30 day(s) with 1 delivery report(s), "
        "1 unmatched delivery report(s) and 2 empty batch(es).\n"
    )
    after = (SmsMessage.objects.count(), DeliveryReport.objects.count(), SmsBatch.objects.count())
    assert after == before
    real, _ = run("smsgw_cleanup", "--days", "30")
    assert real == out.replace("Would delete", "Deleted")


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--days", "0"], "days must be a whole number of at least 1, not 0"),
        (["--days", "-3"], "days must be a whole number of at least 1, not -3"),
        (["--days", "30", "--batch-size", "0"], "batch size must be a whole number of at least 1"),
    ],
)
def test_cleanup_refuses_bad_numbers_clearly(args, error):
    message(Status.DELIVERED, 400)
    with pytest.raises(CommandError, match=error) as caught:
        run("smsgw_cleanup", *args)
    assert caught.value.returncode == 2
    assert SmsMessage.objects.count() == 1


@pytest.mark.parametrize("args", [[], ["--days", "a week"]])
def test_cleanup_needs_a_number_of_days(args):
    with pytest.raises(CommandError, match="--days"):
        run("smsgw_cleanup", *args)
