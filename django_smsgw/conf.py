"""The app's settings: one ``SMSGW`` dict, read on every access so ``override_settings`` works.

Every key, its default and its environment variable are listed in ``DEFAULTS`` / ``ENV_FALLBACKS``
below; README.rst documents them. Misconfiguration is reported by the system checks in
``checks.py``, never by a crash at import.
"""

from __future__ import annotations

from typing import Any

import environ
from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "API_KEY": "",
    "BASE_URL": "",
    "DEFAULT_CHANNEL": "reguler",
    "CALLBACK_URL": "",
    "CALLBACK_SECRET": "",
    # Addresses or networks ("203.0.113.0/24") allowed to POST callbacks; empty = any.
    "CALLBACK_ALLOWED_IPS": [],
    # The request.META key your own proxy sets to the client address (e.g.
    # "HTTP_X_FORWARDED_FOR"); empty = REMOTE_ADDR. Never trusted unless set.
    "CALLBACK_CLIENT_IP_HEADER": "",
    "TIMEOUT": 10,
    "BACKEND": "django_smsgw.backends.http.HttpBackend",
    "QUEUE": False,
    "URLENCODE_MESSAGE": False,
    "CONNECT_RETRIES": 2,
    "RETRY_BACKOFF": 0.5,
    # Queue workers (services/queue.py, smsgw_send_queued, tasks.py). Seconds a worker's claim
    # on a chunk lasts; a dead worker's messages are swept after it. Longer than any request.
    "QUEUE_LEASE": 300,
    # Requests a message gets when they provably never reach the provider; then `failed`.
    "QUEUE_MAX_ATTEMPTS": 5,
    # Back-off between those attempts, in seconds: doubles from the first value, capped at the
    # second, times a jitter of 0.5 to 1.
    "QUEUE_RETRY_DELAY": 30,
    "QUEUE_RETRY_MAX_DELAY": 600,
    # Seconds between balance checks while a channel is paused for balance (global 50, packet 80).
    "QUEUE_BALANCE_RECHECK": 60,
    # Queued messages are sent by Celery tasks (django-smsgw[celery]) enqueued on commit.
    "CELERY": False,
}

# Secrets and per-deployment addresses may come from the environment instead of settings.py.
ENV_FALLBACKS = {"API_KEY": "SMSGW_API_KEY", "BASE_URL": "SMSGW_BASE_URL"}

_env = environ.Env()


def user_settings() -> dict[str, Any]:
    return getattr(settings, "SMSGW", None) or {}


def get(name: str) -> Any:
    """The value of one key: the ``SMSGW`` dict, else its environment variable, else the default."""
    configured = user_settings()
    if name in configured:
        return configured[name]
    if name in ENV_FALLBACKS:
        return _env.str(ENV_FALLBACKS[name], default=DEFAULTS[name])
    return DEFAULTS[name]


def timeout() -> tuple[float, float]:
    """(connect, read) seconds for ``requests``; a single number applies to both."""
    value = get("TIMEOUT")
    if isinstance(value, (tuple, list)):
        connect, read = value
        return float(connect), float(read)
    return float(value), float(value)


def callback_secrets() -> list[str]:
    """Every accepted callback secret; a list lets a secret be rotated without losing reports."""
    value = get("CALLBACK_SECRET")
    if isinstance(value, str):
        return [value] if value else []
    return [secret for secret in value if secret]
