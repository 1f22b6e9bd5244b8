"""Settings, backends and system checks (SPEC §2, §8)."""

from __future__ import annotations

import io

import pytest
from django.core.checks import run_checks

from django_smsgw import conf, send_bulk
from django_smsgw.backends import get_backend
from django_smsgw.backends.console import ConsoleBackend
from django_smsgw.backends.http import HttpBackend


def check_ids(settings, **smsgw):
    settings.SMSGW = {"CALLBACK_SECRET": "s3cret", **smsgw}
    return sorted(issue.id for issue in run_checks() if issue.id.startswith("smsgw."))


def test_a_complete_configuration_passes_the_checks(settings):
    assert check_ids(settings, API_KEY="k", BASE_URL="http://203.0.113.5") == []


def test_the_checks_report_each_misconfiguration(settings, monkeypatch):
    monkeypatch.delenv("SMSGW_API_KEY", raising=False)
    monkeypatch.delenv("SMSGW_BASE_URL", raising=False)
    assert check_ids(settings) == ["smsgw.E004", "smsgw.E005"]
    assert check_ids(settings, API_KEY="k", BASE_URL="203.0.113.5") == ["smsgw.E005"]
    assert check_ids(settings, API_KEY="k", BASE_URL="http://x", DEFAULT_CHANNEL="sms") == [
        "smsgw.E002"
    ]
    assert check_ids(settings, API_KEY="k", BASE_URL="http://x", TIMEOUT=0) == ["smsgw.E003"]
    assert check_ids(settings, API_KEY="k", BASE_URL="http://x", TIMEOUT="ten") == ["smsgw.E003"]
    assert check_ids(settings, API_KEY="k", BASE_URL="http://x", BACKEND="no.such.Backend") == [
        "smsgw.E001"
    ]
    assert check_ids(settings, API_KEY="k", BASE_URL="http://x", CONNECT_RETRIES=-1) == [
        "smsgw.E006"
    ]
    assert check_ids(settings, API_KEY="k", BASE_URL="http://x", APIKEY="typo") == ["smsgw.W001"]


def test_the_development_backends_need_no_provider_settings(settings, monkeypatch):
    monkeypatch.delenv("SMSGW_API_KEY", raising=False)
    assert check_ids(settings, BACKEND="django_smsgw.backends.locmem.LocmemBackend") == []


def test_api_key_and_base_url_fall_back_to_the_environment(settings, monkeypatch):
    settings.SMSGW = {}
    monkeypatch.setenv("SMSGW_API_KEY", "from-env")
    monkeypatch.setenv("SMSGW_BASE_URL", "http://198.51.100.7")
    backend = HttpBackend()
    assert (backend.api_key, backend.base_url) == ("from-env", "http://198.51.100.7")
    settings.SMSGW = {"API_KEY": "from-settings"}
    assert HttpBackend().api_key == "from-settings"


def test_settings_are_read_lazily(settings):
    settings.SMSGW = {"TIMEOUT": (3, 20)}
    assert conf.timeout() == (3.0, 20.0)
    settings.SMSGW = {"TIMEOUT": 7}
    assert conf.timeout() == (7.0, 7.0)
    assert conf.get("DEFAULT_CHANNEL") == "reguler"


@pytest.mark.parametrize(
    ("value", "expected"), [("s1", ["s1"]), (["a", "", "b"], ["a", "b"]), ("", [])]
)
def test_callback_secret_may_be_one_or_several(settings, value, expected):
    settings.SMSGW = {"CALLBACK_SECRET": value}
    assert conf.callback_secrets() == expected


def test_the_backend_setting_chooses_the_backend(settings):
    settings.SMSGW = {"BACKEND": "django_smsgw.backends.console.ConsoleBackend"}
    assert isinstance(get_backend(), ConsoleBackend)


@pytest.mark.django_db
def test_the_console_backend_writes_each_message_and_accepts_it(settings, monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stdout", stream)
    settings.SMSGW = {"BACKEND": "django_smsgw.backends.console.ConsoleBackend"}
    batch = send_bulk([("081234567890", "Halo A"), ("085712345678", "Halo B")], channel="otp")
    assert batch.accepted_count == 2
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("[smsgw otp] to +6281234567890 at now")
    assert lines[1].endswith(": Halo B")


@pytest.mark.django_db
def test_the_locmem_outbox_keeps_what_was_sent_in_order(outbox):
    send_bulk([("081234567890", "A"), ("085712345678", "B")])
    assert [(m.number, m.message) for m in outbox] == [
        ("+6281234567890", "A"),
        ("+6285712345678", "B"),
    ]
    assert len({m.sending_id for m in outbox}) == 2


@pytest.mark.django_db
def test_the_migrations_match_the_models():
    from django.core.management import call_command

    call_command("makemigrations", "django_smsgw", "--check", "--dry-run", verbosity=0)
