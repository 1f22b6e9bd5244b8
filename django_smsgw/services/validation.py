"""Checks made before anything is stored or sent (SPEC §3)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import phonenumbers
from django.utils import timezone

from .. import conf
from ..exceptions import InvalidChannel, InvalidMessage, InvalidNumber, InvalidSchedule
from ..protocol import codes

# The provider delivers to Indonesian mobiles only.
REGION = "ID"
# Digits only, as 08… or +628…: the PhoneNumber is built directly, because
# phonenumbers.parse() (finding a number in free text) took a third of a bulk send's time;
# phonenumbers still decides validity and type, below. "628…" without "+" is left to parse():
# for some lengths it is a national number, not +62.
CANONICAL = re.compile(r"(?:\+62|0)(8[0-9]{5,13})")
MOBILE_TYPES = (
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
)


def normalize_number(raw: Any) -> str:
    """E.164 (``+6281234567890``) for any way a person writes an Indonesian mobile number."""
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise InvalidNumber(f"a phone number must be text, not {type(raw).__name__}", code="type")
    text = str(raw).strip()
    if not text:
        raise InvalidNumber("the phone number is empty", code="empty")
    match = CANONICAL.fullmatch(text)
    if match:
        parsed = phonenumbers.PhoneNumber(country_code=62, national_number=int(match.group(1)))
    else:
        parsed = parse(text)
    # number_type() is UNKNOWN for an invalid number, and +62 has one region (ID), so this is
    # is_valid_number() without classifying the number twice.
    number_type = phonenumbers.number_type(parsed)
    if number_type == phonenumbers.PhoneNumberType.UNKNOWN:
        raise InvalidNumber(f"{text[:40]!r} is not a valid Indonesian number", code="invalid")
    if number_type not in MOBILE_TYPES:
        raise InvalidNumber(
            f"{text[:40]!r} is not a mobile number; SMS needs one", code="not_mobile"
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def parse(text: str) -> phonenumbers.PhoneNumber:
    try:
        parsed = phonenumbers.parse(text, REGION)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(
            f"{text[:40]!r} is not a phone number: {exc}", code="unparseable"
        ) from exc
    if parsed.country_code != 62:
        raise InvalidNumber(
            f"{text[:40]!r} is not an Indonesian number (+62); the provider only delivers in "
            "Indonesia",
            code="not_indonesian",
        )
    return parsed


def validate_message(text: Any) -> str:
    if not isinstance(text, str):
        raise InvalidMessage(f"the message must be text, not {type(text).__name__}", code="type")
    if not text.strip():
        raise InvalidMessage("the message is empty", code="empty")
    if len(text) > codes.MAX_MESSAGE_LENGTH:
        raise InvalidMessage(
            f"the message is {len(text)} characters; the provider accepts at most "
            f"{codes.MAX_MESSAGE_LENGTH}",
            code="too_long",
        )
    return text


def validate_send_at(send_at: Any) -> dt.datetime | None:
    if send_at is None:
        return None
    if not isinstance(send_at, dt.datetime):
        raise InvalidSchedule(
            f"send_at must be a datetime, not {type(send_at).__name__}", code="type"
        )
    if timezone.is_naive(send_at):
        raise InvalidSchedule(
            "send_at must be an aware datetime (it is sent to the provider in Asia/Jakarta time)",
            code="naive",
        )
    return send_at


def resolve_channel(channel: str | None) -> str:
    channel = channel or conf.get("DEFAULT_CHANNEL")
    if channel not in codes.CHANNELS:
        raise InvalidChannel(
            f"unknown channel {channel!r}; expected one of {', '.join(codes.CHANNELS)}",
            code="channel",
        )
    return channel


def resolve_queue(queue: bool | None) -> bool:
    return bool(conf.get("QUEUE")) if queue is None else bool(queue)
