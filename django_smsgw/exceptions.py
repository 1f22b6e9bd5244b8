"""Everything the app raises.

Bad input is a Django ``ValidationError`` (raised before anything is stored or sent). Anything
about the gateway derives from ``GatewayError`` and is raised only after the outcome has been
recorded on the affected messages, which the exception carries.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError


class InvalidNumber(ValidationError):
    """The number is not an Indonesian mobile number this provider can deliver to."""


class InvalidMessage(ValidationError):
    """The text is empty or longer than the provider accepts (480 characters)."""


class InvalidSchedule(ValidationError):
    """``send_at`` is not an aware datetime."""


class InvalidChannel(ValidationError):
    """The channel is not one of reguler, masking, otp."""


class GatewayError(Exception):
    """The provider did not accept a request or a message.

    ``code``/``text`` are the provider's code and text when it answered; ``messages`` the
    affected ``SmsMessage`` records (already saved with their outcome); ``batch`` their batch;
    ``response`` the provider's parsed reply or raw body, never containing the API key.
    """

    def __init__(
        self,
        reason: str,
        *,
        code: int | None = None,
        text: str = "",
        messages: list[Any] | None = None,
        batch: Any = None,
        response: Any = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.text = text
        self.messages = list(messages or [])
        self.batch = batch
        self.response = response
        self.http_status = http_status
        self.snapshot = None  # the BalanceSnapshot recording a failed balance check

    def __str__(self) -> str:
        parts = [self.reason]
        if self.messages:
            parts.append(f"({len(self.messages)} message(s) affected)")
        if self.response is not None:
            parts.append(f"provider replied: {str(self.response)[:500]}")
        return " ".join(parts)


class GatewayRefused(GatewayError):
    """The provider refused the whole request (a global status other than 10)."""


class MessageRefused(GatewayError):
    """The provider refused the message's packet (``send_sms`` only; bulk records it)."""


class ProviderUnreachable(GatewayError):
    """The request provably never reached the provider (connection refused, DNS, connect
    timeout), after the configured retries. Nothing was sent; the messages are ``failed``."""


class OutcomeUnknown(GatewayError):
    """The request may have been processed (read timeout, HTTP 5xx, a reply we cannot parse,
    a dropped connection). The messages are ``unknown`` and are never re-sent automatically."""
