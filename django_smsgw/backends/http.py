"""The real backend: JSON over HTTP(S) to the provider's server (``BASE_URL``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from django.core.exceptions import ImproperlyConfigured
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError
from urllib3.util.retry import Retry

from .. import conf
from ..exceptions import GatewayRefused, OutcomeUnknown, ProviderUnreachable
from ..protocol import payloads, replies
from ..protocol.payloads import OutgoingPacket
from ..protocol.replies import BalanceReply, MalformedReply, SendReply
from .base import BaseBackend

logger = logging.getLogger("django_smsgw.http")

_sessions = threading.local()
T = TypeVar("T")


def session_for(connect_retries: int, backoff: float) -> requests.Session:
    """One ``requests.Session`` per thread and retry policy, reused for keep-alive.

    urllib3 retries only connection errors: those raised before any byte of the request left
    (refused, DNS, connect timeout). A POST is never retried once it may have reached the
    provider: ``read=0`` and ``other=0``, and POST is not in the retryable methods anyway.
    """
    key = (connect_retries, backoff)
    cache = getattr(_sessions, "cache", None)
    if cache is None:
        cache = _sessions.cache = {}
    session = cache.get(key)
    if session is None:
        retry = Retry(
            total=connect_retries,
            connect=connect_retries,
            read=0,
            status=0,
            other=0,
            redirect=0,
            backoff_factor=backoff,
            backoff_jitter=backoff / 2,
            backoff_max=10,
            raise_on_status=False,
        )
        session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry, pool_connections=3, pool_maxsize=4)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = "django-smsgw"
        cache[key] = session
    return session


def never_sent(exc: requests.RequestException) -> bool:
    """True when ``requests`` failed before the request could have reached the server."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # MaxRetryError wraps the last error
    return isinstance(reason, NewConnectionError)  # includes NameResolutionError


def parse(parser: Callable[[Any], T], data: Any, kind: str) -> T:
    """A JSON reply that is not the documented shape: the request may have been processed."""
    try:
        return parser(data)
    except MalformedReply as exc:
        raise OutcomeUnknown(f"unexpected reply to a {kind} request: {exc}", response=data) from exc


class HttpBackend(BaseBackend):
    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        callback_url: str | None = None,
        timeout: tuple[float, float] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key if api_key is not None else conf.get("API_KEY")
        self.base_url = base_url if base_url is not None else conf.get("BASE_URL")
        self._callback_url = callback_url
        self.timeout = timeout or conf.timeout()
        if not self.api_key or not self.base_url:
            raise ImproperlyConfigured(
                "django_smsgw's HTTP backend needs SMSGW['API_KEY'] and SMSGW['BASE_URL'] "
                "(or the SMSGW_API_KEY / SMSGW_BASE_URL environment variables)."
            )
        self.session = session_for(
            int(conf.get("CONNECT_RETRIES")), float(conf.get("RETRY_BACKOFF"))
        )

    @property
    def callback_url(self) -> str:
        return self._callback_url if self._callback_url is not None else super().callback_url

    def send_packets(self, channel: str, packets: list[OutgoingPacket]) -> SendReply:
        body = payloads.send_body(
            self.api_key,
            self.callback_url,
            packets,
            urlencode_message=bool(conf.get("URLENCODE_MESSAGE")),
        )
        data = self.post(payloads.endpoint(self.base_url, channel, "send"), body)
        return parse(replies.parse_send_reply, data, "send")

    def check_balance(self, channel: str) -> BalanceReply:
        body = payloads.balance_body(self.api_key)
        data = self.post(payloads.endpoint(self.base_url, channel, "balance"), body)
        return parse(replies.parse_balance_reply, data, "balance")

    def post(self, url: str, body: dict[str, Any]) -> Any:
        """POST ``body`` as JSON; the decoded reply, or a classified transport failure."""
        packets = len(body.get("datapacket", ()))
        logger.debug("POST %s (%d packets)", url, packets)
        try:
            response = self.session.post(
                url, json=body, timeout=self.timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            if never_sent(exc):
                logger.warning("provider unreachable at %s: %s", url, exc)
                raise ProviderUnreachable(
                    f"could not connect to the provider at {url}: {exc}"
                ) from exc
            logger.warning("no usable reply from %s: %s", url, exc)
            raise OutcomeUnknown(f"no reply from the provider at {url}: {exc}") from exc
        if response.status_code >= 500 or 200 < response.status_code < 300:
            raise OutcomeUnknown(
                f"HTTP {response.status_code} from the provider at {url}",
                http_status=response.status_code,
                response=response.text[:500],
            )
        if response.status_code != 200:
            # A 3xx/4xx means the server did not run the API script (wrong BASE_URL, a proxy
            # refusing us): nothing was processed.
            raise GatewayRefused(
                f"HTTP {response.status_code} from {url}; is SMSGW['BASE_URL'] right?",
                http_status=response.status_code,
                response=response.text[:500],
            )
        try:
            return replies.loads(response.content)
        except MalformedReply as exc:
            raise OutcomeUnknown(str(exc), http_status=200, response=response.text[:500]) from exc
