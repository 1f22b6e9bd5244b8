"""System checks (``manage.py check``): misconfiguration is reported here, not by a crash."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from django.core.checks import Error, Tags, Warning, register
from django.utils.module_loading import import_string

from . import conf
from .protocol import codes

HTTP_BACKEND = "django_smsgw.backends.http.HttpBackend"


@register(Tags.compatibility)
def check_settings(app_configs=None, **kwargs):
    issues = []
    unknown = sorted(set(conf.user_settings()) - set(conf.DEFAULTS))
    if unknown:
        issues.append(
            Warning(
                f"SMSGW has unknown key(s): {', '.join(unknown)}.",
                hint=f"Known keys: {', '.join(conf.DEFAULTS)}.",
                id="smsgw.W001",
            )
        )
    backend = conf.get("BACKEND")
    try:
        import_string(backend)
    except ImportError as exc:
        issues.append(
            Error(f"SMSGW['BACKEND'] {backend!r} cannot be imported: {exc}", id="smsgw.E001")
        )
    if conf.get("DEFAULT_CHANNEL") not in codes.CHANNELS:
        issues.append(
            Error(
                f"SMSGW['DEFAULT_CHANNEL'] is {conf.get('DEFAULT_CHANNEL')!r}.",
                hint=f"Use one of {', '.join(codes.CHANNELS)}.",
                id="smsgw.E002",
            )
        )
    try:
        connect, read = conf.timeout()
        valid_timeout = connect > 0 and read > 0
    except (TypeError, ValueError):
        valid_timeout = False
    if not valid_timeout:
        issues.append(
            Error(
                f"SMSGW['TIMEOUT'] is {conf.get('TIMEOUT')!r}.",
                hint="A positive number of seconds, or a (connect, read) pair.",
                id="smsgw.E003",
            )
        )
    if backend == HTTP_BACKEND:
        issues.extend(check_http_backend())
    issues.extend(check_callbacks())
    retries = conf.get("CONNECT_RETRIES")
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 10:
        issues.append(
            Error(f"SMSGW['CONNECT_RETRIES'] is {retries!r}.", hint="0 to 10.", id="smsgw.E006")
        )
    return issues


def check_http_backend():
    issues = []
    if not conf.get("API_KEY"):
        issues.append(
            Error(
                "SMSGW['API_KEY'] is not set.",
                hint="Set it, or the SMSGW_API_KEY environment variable.",
                id="smsgw.E004",
            )
        )
    base_url = conf.get("BASE_URL")
    parts = urlsplit(base_url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        issues.append(
            Error(
                f"SMSGW['BASE_URL'] is {base_url!r}; it must be the provider's server URL.",
                hint="For example http://203.0.113.5 (or set SMSGW_BASE_URL).",
                id="smsgw.E005",
            )
        )
    return issues


LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "testserver")


def check_callbacks():
    issues = []
    secrets = conf.callback_secrets()
    callback_url = conf.get("CALLBACK_URL")
    if not secrets:
        issues.append(
            Warning(
                "SMSGW['CALLBACK_SECRET'] is not set: the callback view refuses every delivery "
                "report.",
                hint="Set a long random secret and put it at the end of CALLBACK_URL; silence "
                "smsgw.W002 if you do not use delivery reports.",
                id="smsgw.W002",
            )
        )
    if callback_url:
        parts = urlsplit(callback_url)
        if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
            issues.append(
                Warning(
                    f"SMSGW['CALLBACK_URL'] {callback_url!r} is plain http: the secret in its "
                    "path travels in clear.",
                    hint="Use https.",
                    id="smsgw.W003",
                )
            )
        if secrets and not any(parts.path.rstrip("/").endswith("/" + s) for s in secrets):
            issues.append(
                Warning(
                    "SMSGW['CALLBACK_URL'] does not end with any CALLBACK_SECRET: the provider's "
                    "reports will be refused.",
                    hint="…/smsgw/callback/<secret>/",
                    id="smsgw.W004",
                )
            )
    for network in conf.get("CALLBACK_ALLOWED_IPS"):
        try:
            ipaddress.ip_network(network, strict=False)
        except (TypeError, ValueError):
            issues.append(
                Error(
                    f"SMSGW['CALLBACK_ALLOWED_IPS'] has {network!r}, not an address or network.",
                    id="smsgw.E007",
                )
            )
    return issues


# The queue's settings (services/queue.py); ids smsgw.E020–E029 and W020–W029.
QUEUE_SECONDS = (
    "QUEUE_LEASE",
    "QUEUE_RETRY_DELAY",
    "QUEUE_RETRY_MAX_DELAY",
    "QUEUE_BALANCE_RECHECK",
)


@register(Tags.compatibility)
def check_queue_settings(app_configs=None, **kwargs):
    issues = []
    for key in QUEUE_SECONDS:
        value = conf.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            issues.append(
                Error(
                    f"SMSGW['{key}'] is {value!r}.",
                    hint="A positive number of seconds.",
                    id="smsgw.E020",
                )
            )
    attempts = conf.get("QUEUE_MAX_ATTEMPTS")
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 100:
        issues.append(
            Error(
                f"SMSGW['QUEUE_MAX_ATTEMPTS'] is {attempts!r}.", hint="1 to 100.", id="smsgw.E021"
            )
        )
    if conf.get("CELERY"):
        try:
            import celery  # noqa: F401
        except ImportError:
            issues.append(
                Error(
                    "SMSGW['CELERY'] is on but Celery is not installed.",
                    hint="pip install 'django-smsgw[celery]', or turn CELERY off.",
                    id="smsgw.E022",
                )
            )
    longest = longest_request_seconds()
    lease = conf.get("QUEUE_LEASE")
    if not issues and conf.get("BACKEND") == HTTP_BACKEND and longest and lease <= longest:
        issues.append(
            Warning(
                f"SMSGW['QUEUE_LEASE'] ({lease} s) is not longer than a send request can take "
                f"({longest:g} s with TIMEOUT and CONNECT_RETRIES).",
                hint="A worker still waiting for the provider would find its messages swept to "
                "'unknown'. Raise QUEUE_LEASE.",
                id="smsgw.W020",
            )
        )
    return issues


def longest_request_seconds() -> float | None:
    """How long one send request can take: every connect attempt timing out, urllib3's pauses
    between them (at most 10 s each), then the wait for the reply. None if misconfigured."""
    try:
        connect, read = conf.timeout()
        retries = int(conf.get("CONNECT_RETRIES"))
    except (TypeError, ValueError):
        return None  # reported by check_settings
    return connect * (retries + 1) + 10 * retries + read
