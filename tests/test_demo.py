"""The example project and its demo (SPEC §9), run as a user runs them: in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MANAGE = str(ROOT / "example_project" / "manage.py")


@pytest.fixture
def project_env(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/demo.sqlite3"}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # manage.py chooses the example project's
    return env


def manage(env, *args, timeout=120):
    return subprocess.run(
        [sys.executable, MANAGE, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_demo_sends_a_batch_end_to_end_and_prints_a_summary(project_env):
    result = manage(project_env, "demo", "--count", "25")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "batch #1: 26 messages, 1 provider request(s); accepted 25, rejected 1" in out
    assert "final statuses: delivered 25, rejected 1, undelivered 1" in out
    assert "demo OK" in out


def test_the_example_project_passes_its_system_checks(project_env):
    result = manage(project_env, "check", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr


PAGE_SCRIPT = """
from django.contrib.auth import get_user_model
from django.test import Client
from django.test.utils import setup_test_environment
from django_smsgw.models import SmsMessage
from django_smsgw.simulator import Simulator
from django.conf import settings

setup_test_environment()
get_user_model().objects.create_superuser("staff", "s@example.com", "pw")
with Simulator(api_key="demo-api-key") as simulator:
    settings.SMSGW = {**settings.SMSGW, "BASE_URL": simulator.base_url, "CALLBACK_URL": ""}
    client = Client()
    assert client.get("/").status_code == 302  # staff only
    client.login(username="staff", password="pw")
    response = client.post("/", {"one-number": "0812-3456-7890", "one-message": "Halo",
                                 "one-channel": "otp", "send": "1"}, follow=True)
    assert b"Sent to +6281234567890" in response.content, response.content
    response = client.post("/", {"bulk-rows": "081234567891, A\\n12, bad\\n",
                                 "bulk-channel": "reguler", "bulk": "1"}, follow=True)
    assert b"1 accepted, 1 rejected" in response.content, response.content
    page = client.get("/").content.decode()
    assert "+6281234567890" in page and "otp" in page
    assert SmsMessage.objects.count() == 3
print("page OK")
"""


def test_the_demo_page_sends_single_and_bulk_messages(project_env):
    assert manage(project_env, "migrate", "--verbosity", "0").returncode == 0
    result = manage(project_env, "shell", "--command", PAGE_SCRIPT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "page OK" in result.stdout
