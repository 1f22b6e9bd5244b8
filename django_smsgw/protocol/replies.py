"""Tolerant parsing of the provider's replies into plain typed objects (provider-api.md §3).

The provider and its resellers vary: keys in either case, numbers as strings, a list of one
object or a bare object, packets with or without their ``packet`` wrapper. Whatever we cannot
understand raises ``MalformedReply`` with a readable reason, never a KeyError or TypeError.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


class MalformedReply(ValueError):
    """A body that is not the shape the provider documents, even read tolerantly."""


@dataclass(frozen=True, slots=True)
class PacketResult:
    number: str
    sending_id: int | None  # None when the provider gave 0 (a refused packet)
    code: int
    text: str
    price: Decimal | None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SendReply:
    global_code: int
    global_text: str
    packets: list[PacketResult]
    raw: Any = None


@dataclass(frozen=True, slots=True)
class BalanceReply:
    global_code: int
    global_text: str
    balance: Decimal | None
    expires_on: dt.date | None
    raw: Any = None


@dataclass(frozen=True, slots=True)
class DeliveryUpdate:
    sending_id: int
    number: str
    code: int
    text: str
    raw: dict[str, Any] = field(default_factory=dict)


def loads(body: bytes | str) -> Any:
    """JSON from the wire; a PHP warning or HTML error page is a ``MalformedReply``."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        raise MalformedReply(f"reply is not JSON: {text[:200]!r}") from exc


# Plain decimal digits, optionally "…​.0": never exponents, "inf", "NaN" or "1_000", which
# Decimal() would accept (and "1e999999" would cost seconds of CPU to turn into an int).
INTEGER = re.compile(r"[+-]?[0-9]{1,20}(?:\.0*)?")
AMOUNT = re.compile(r"[+-]?([0-9]+)(?:\.[0-9]{0,6})?")
CENT = Decimal("0.01")


def to_int(value: Any, what: str) -> int:
    """An int from an int or a numeric string ("10", " 10 ", "10.0")."""
    if isinstance(value, bool):
        raise MalformedReply(f"{what} is not a number: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and INTEGER.fullmatch(value.strip()):
        return int(Decimal(value.strip()))
    raise MalformedReply(f"{what} is not a whole number: {value!r:.50}")


def to_decimal(value: Any, what: str, *, integer_digits: int = 10) -> Decimal | None:
    """An amount of money in rupiah, to the cent; None when absent. ``integer_digits`` is what
    the model field can hold, so an absurd amount fails here, not when it is saved."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise MalformedReply(f"{what} is not a number: {value!r:.50}")
    if isinstance(value, float):
        text = f"{value:.6f}" if math.isfinite(value) else "not finite"
    else:
        text = str(value).strip()
    match = AMOUNT.fullmatch(text)
    if not match or len(match.group(1).lstrip("0")) > integer_digits:
        raise MalformedReply(f"{what} is not an amount we can store: {value!r:.50}")
    return Decimal(text).quantize(CENT)


def to_date(value: Any, what: str) -> dt.date | None:
    if value in (None, "", "0000-00-00"):
        return None
    try:
        return dt.date.fromisoformat(str(value).strip()[:10])
    except ValueError as exc:
        raise MalformedReply(f"{what} is not a date: {value!r}") from exc


def lower_keys(obj: Any, what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise MalformedReply(f"{what} is not an object: {str(obj)[:200]!r}")
    return {str(key).lower(): value for key, value in obj.items()}


def only_object(value: Any, what: str) -> dict[str, Any]:
    """``[{...}]`` or a bare ``{...}`` → the object, with lower-case keys."""
    if isinstance(value, list):
        if not value:
            raise MalformedReply(f"{what} is an empty list")
        value = value[0]
    return lower_keys(value, what)


def envelope(data: Any, key: str) -> dict[str, Any]:
    top = lower_keys(data, "reply")
    if key not in top:
        raise MalformedReply(f"reply has no {key!r}: {str(data)[:200]!r}")
    return only_object(top[key], key)


def parse_send_reply(data: Any) -> SendReply:
    body = envelope(data, "sending_respon")
    if "globalstatus" not in body:
        raise MalformedReply("sending_respon has no globalstatus")
    packets = body.get("datapacket") or []
    if isinstance(packets, dict):
        packets = [packets]
    if not isinstance(packets, list):
        raise MalformedReply(f"datapacket is not a list: {str(packets)[:200]!r}")
    return SendReply(
        global_code=to_int(body["globalstatus"], "globalstatus"),
        global_text=str(body.get("globalstatustext") or ""),
        packets=[parse_packet(entry, index) for index, entry in enumerate(packets)],
        raw=data,
    )


def parse_packet(entry: Any, index: int) -> PacketResult:
    what = f"datapacket[{index}]"
    item = lower_keys(entry, what)
    # Some servers drop the {"packet": {...}} wrapper.
    if "packet" in item:
        item = lower_keys(item["packet"], f"{what}.packet")
    if "sendingstatus" not in item:
        raise MalformedReply(f"{what} has no sendingstatus")
    sending_id = to_int(item.get("sendingid") or 0, f"{what}.sendingid")
    return PacketResult(
        number=str(item.get("number") or ""),
        sending_id=sending_id or None,
        code=to_int(item["sendingstatus"], f"{what}.sendingstatus"),
        text=str(item.get("sendingstatustext") or ""),
        price=to_decimal(item.get("price"), f"{what}.price"),
        raw=entry,
    )


def parse_balance_reply(data: Any) -> BalanceReply:
    body = envelope(data, "balance_respon")
    if "globalstatus" not in body:
        raise MalformedReply("balance_respon has no globalstatus")
    return BalanceReply(
        global_code=to_int(body["globalstatus"], "globalstatus"),
        global_text=str(body.get("globalstatustext") or ""),
        balance=to_decimal(body.get("balance"), "Balance", integer_digits=14),
        expires_on=to_date(body.get("expired"), "Expired"),
        raw=data,
    )


def parse_callback(data: Any) -> list[DeliveryUpdate]:
    """The items of a delivery callback body (``status_respon``: one object or a list)."""
    top = lower_keys(data, "callback body")
    if "status_respon" not in top:
        raise MalformedReply("callback body has no 'status_respon'")
    items = top["status_respon"]
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not items:
        raise MalformedReply("status_respon is not a non-empty list")
    return [parse_delivery_update(item, index) for index, item in enumerate(items)]


# A sending id is a positive 64-bit integer; a delivery code fits the small integer we store.
MAX_SENDING_ID = 2**63 - 1
MAX_DELIVERY_CODE = 32767


def parse_delivery_update(entry: Any, index: int) -> DeliveryUpdate:
    what = f"status_respon[{index}]"
    item = lower_keys(entry, what)
    for key in ("sendingid", "deliverystatus"):
        if key not in item:
            raise MalformedReply(f"{what} has no {key}")
    sending_id = to_int(item["sendingid"], f"{what}.sendingid")
    if not 0 < sending_id <= MAX_SENDING_ID:
        raise MalformedReply(f"{what}.sendingid is out of range: {sending_id}")
    code = to_int(item["deliverystatus"], f"{what}.deliverystatus")
    if not 0 <= code <= MAX_DELIVERY_CODE:
        raise MalformedReply(f"{what}.deliverystatus is out of range: {code}")
    number = item.get("number")
    if number is not None and (isinstance(number, bool) or not isinstance(number, (str, int))):
        raise MalformedReply(f"{what}.number is not a phone number: {number!r:.50}")
    text = item.get("deliverystatustext")
    if text is not None and not isinstance(text, (str, int)):
        raise MalformedReply(f"{what}.deliverystatustext is not text: {text!r:.50}")
    return DeliveryUpdate(
        sending_id=sending_id,
        number=str(number or "")[:32],
        code=code,
        text=str(text or "")[:100],
        raw=entry,
    )
