"""The provider's side of the wire: accounts, validation, charging (provider-api.md).

No HTTP and no Django here: `Provider` turns a request body into the provider's answer and
keeps the account's state behind one lock. Validation runs in the provider's order: the body's
shape (20), the key (30), the balance's expiry (50), the packet count (55), the packets' own
shape and schedule (20), then each packet (60, 70, 80).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from django_smsgw.protocol.codes import (
    BALANCE_GLOBAL_TEXTS,
    CHANNELS,
    GLOBAL_SUCCESS,
    GLOBAL_TEXTS,
    MAX_MESSAGE_LENGTH,
    MAX_PACKETS_PER_REQUEST,
    PACKET_SUCCESS,
    PACKET_TEXTS,
)

WIB = ZoneInfo("Asia/Jakarta")
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"

DEFAULT_BALANCE = 10_000_000
DEFAULT_PRICES = {"reguler": 250, "masking": 350, "otp": 320}
FIRST_SENDING_ID = 1287265

# The simulator is the other side of the wire: a cheap check of the three documented forms is
# enough, the client does the thorough validation.
_MOBILE_NUMBER = re.compile(r"(?:\+?62|0)(8\d{7,12})")

# The real provider answers "success" in lower case for packets (vectors/send_success_otp.json),
# unlike the table's "Success".
_PACKET_SUCCESS_TEXT = "success"

_JSON_SEPARATORS = (",", ":")

SEND = "send"
BALANCE = "balance"


def dumps(payload: Any) -> bytes:
    """JSON the way the provider writes it: compact, UTF-8."""
    return json.dumps(payload, separators=_JSON_SEPARATORS, ensure_ascii=False).encode()


def today_in_wib() -> dt.date:
    return dt.datetime.now(WIB).date()


def normalize_number(number: str) -> str | None:
    """`081…`, `6281…` or `+6281…` (spaces and dashes allowed) as `6281…`; None if not mobile."""
    match = _MOBILE_NUMBER.fullmatch(number)
    if match is None and (" " in number or "-" in number):
        match = _MOBILE_NUMBER.fullmatch(number.replace(" ", "").replace("-", ""))
    return "62" + match.group(1) if match else None


def global_error(kind: str, code: int) -> dict[str, Any]:
    """A whole request refused with `code`: no datapacket, no balance."""
    if kind == SEND:
        key, text = "sending_respon", GLOBAL_TEXTS.get(code, "Unknown")
    else:
        key, text = "balance_respon", BALANCE_GLOBAL_TEXTS.get(code, "Unknown")
    return {key: [{"globalstatus": code, "globalstatustext": text}]}


class _Refused(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class AcceptedMessage(NamedTuple):
    """One accepted packet, as the delivery callbacks need it."""

    sendingid: int
    number: str
    send_at: float | None  # epoch seconds of a schedule in the future; None = sent now


@dataclass
class SendOutcome:
    response: dict[str, Any]
    callback_url: str = ""
    accepted: list[AcceptedMessage] = field(default_factory=list)


@dataclass
class _Counters:
    requests: int = 0
    send_requests: int = 0
    packets_received: int = 0
    packets_accepted: int = 0


class Provider:
    """The provider's accounts for one API key: a balance and a price per channel."""

    def __init__(
        self,
        api_key: str,
        balances: dict[str, int] | None = None,
        prices: dict[str, int] | None = None,
        expires_on: dt.date | None = None,
    ) -> None:
        for name, table in (("balances", balances), ("prices", prices)):
            unknown = set(table or {}) - set(CHANNELS)
            if unknown:
                raise ValueError(f"{name}: unknown channel {', '.join(sorted(unknown))}")
        self.api_key = api_key
        self.initial_balances = {channel: DEFAULT_BALANCE for channel in CHANNELS}
        self.initial_balances.update(balances or {})
        self.prices = {**DEFAULT_PRICES, **(prices or {})}
        self.expires_on = expires_on or today_in_wib() + dt.timedelta(days=365)
        self._lock = threading.Lock()
        # Never reset: ids stay unique across reset() so a client's records never collide.
        self._next_sending_id = FIRST_SENDING_ID
        self._reset_locked()

    def _reset_locked(self) -> None:
        self._balances = dict(self.initial_balances)
        self._counters = _Counters()
        self._messages: dict[int, dict[str, Any]] = {}
        self._numbers: list[str] = []

    def reset(self) -> None:
        with self._lock:
            self._reset_locked()

    def count_request(self, kind: str) -> None:
        with self._lock:
            self._counters.requests += 1
            if kind == SEND:
                self._counters.send_requests += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            counters = vars(self._counters).copy()
            messages = self._messages.copy()
            balances = dict(self._balances)
        # A record is never changed once written, so its copy can be taken outside the lock.
        sendingids = {sid: dict(message) for sid, message in messages.items()}
        return {**counters, "sendingids": sendingids, "balances": balances}

    def received_numbers(self) -> list[str]:
        with self._lock:
            return list(self._numbers)

    def balance(self, channel: str, body: bytes) -> dict[str, Any]:
        try:
            self._check_key(_api_key(_parse_object(body)))
        except _Refused as refused:
            return global_error(BALANCE, refused.code)
        with self._lock:
            balance = self._balances[channel]
        return {
            "balance_respon": [
                {
                    "globalstatus": GLOBAL_SUCCESS,
                    "globalstatustext": BALANCE_GLOBAL_TEXTS[GLOBAL_SUCCESS],
                    "Balance": balance,
                    "Expired": self.expires_on.isoformat(),
                }
            ]
        }

    def send(
        self, channel: str, body: bytes, refuse_packets_with: int | None = None
    ) -> SendOutcome:
        """Answer a send request; `refuse_packets_with` refuses every packet with that code."""
        try:
            payload = _parse_object(body)
            api_key = _api_key(payload)
            packets = payload.get("datapacket")
            callback_url = payload.get("callbackurl") or ""
            if not isinstance(packets, list) or not isinstance(callback_url, str):
                raise _Refused(20)
            self._check_key(api_key)
            if self.expires_on < today_in_wib():
                raise _Refused(50)
            if len(packets) > MAX_PACKETS_PER_REQUEST:
                raise _Refused(55)
            now = time.time()
            schedules = _parse_schedules(packets, now)
        except _Refused as refused:
            return SendOutcome(global_error(SEND, refused.code))

        checked = _check_packets(packets, refuse_packets_with)
        now_text = dt.datetime.fromtimestamp(now, WIB).strftime(DATETIME_FORMAT)
        price = self.prices[channel]
        # Only what must be atomic runs under the lock: ids, charges, records.
        sending_ids = [0] * len(checked)
        accepted: list[AcceptedMessage] = []
        with self._lock:
            balance = self._balances[channel]
            next_id = self._next_sending_id
            for index, (number, message, code) in enumerate(checked):
                if code is not None:
                    continue
                if balance < price:
                    checked[index] = (number, message, 80)
                    continue
                balance -= price
                sending_ids[index] = next_id
                schedule_text, send_at = schedules[index]
                self._messages[next_id] = {
                    "number": number,
                    "message": message,
                    "channel": channel,
                    "sendingdatetime": schedule_text or now_text,
                    "price": price,
                }
                self._numbers.append(number)
                if callback_url:
                    accepted.append(AcceptedMessage(next_id, number, send_at))
                next_id += 1
            self._counters.packets_received += len(checked)
            self._counters.packets_accepted += next_id - self._next_sending_id
            self._next_sending_id = next_id
            self._balances[channel] = balance

        entries = []
        for (number, _, code), sendingid in zip(checked, sending_ids, strict=True):
            if code is None:
                entries.append(_packet_entry(number, sendingid, PACKET_SUCCESS, price))
            else:
                entries.append(_packet_entry(number, 0, code, 0))
        response = {
            "sending_respon": [
                {
                    "globalstatus": GLOBAL_SUCCESS,
                    "globalstatustext": GLOBAL_TEXTS[GLOBAL_SUCCESS],
                    "datapacket": entries,
                }
            ]
        }
        return SendOutcome(response, callback_url, accepted)

    def _check_key(self, api_key: str) -> None:
        if api_key != self.api_key:
            raise _Refused(30)


def _parse_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError:  # includes UnicodeDecodeError
        raise _Refused(20) from None
    if not isinstance(payload, dict):
        raise _Refused(20)
    return payload


def _api_key(payload: dict[str, Any]) -> str:
    api_key = payload.get("apikey")
    if not isinstance(api_key, str):
        raise _Refused(20)
    return api_key


def _parse_schedules(packets: list[Any], now: float) -> list[tuple[str, float | None]]:
    """Each packet's (sendingdatetime as given, epoch of a future schedule or None)."""
    parsed: dict[str, tuple[str, float | None]] = {"": ("", None)}
    schedules = []
    for packet in packets:
        if not isinstance(packet, dict):
            raise _Refused(20)
        text = packet.get("sendingdatetime") or ""
        if not isinstance(text, str):
            raise _Refused(20)
        if text not in parsed:
            try:
                local = dt.datetime.strptime(text.strip(), DATETIME_FORMAT).replace(tzinfo=WIB)
            except ValueError:
                raise _Refused(20) from None
            send_at = local.timestamp()
            parsed[text] = (local.strftime(DATETIME_FORMAT), send_at if send_at > now else None)
        schedules.append(parsed[text])
    return schedules


def _check_packets(
    packets: list[dict[str, Any]], refuse_with: int | None
) -> list[tuple[str, Any, int | None]]:
    """(number as echoed, message, refusal code or None if acceptable) for each packet."""
    checked = []
    for packet in packets:
        raw_number = packet.get("number")
        raw_number = "" if raw_number is None else str(raw_number)
        number = normalize_number(raw_number)
        message = packet.get("message")
        if refuse_with is not None:
            code = refuse_with
        elif number is None:
            code = 60
        elif not _is_valid_message(message):
            code = 70
        else:
            code = None
        checked.append((number or raw_number, message, code))
    return checked


def _is_valid_message(message: Any) -> bool:
    # Taken as it comes, URL-encoded or not (one official sample URL-encodes it).
    return isinstance(message, str) and 0 < len(message) <= MAX_MESSAGE_LENGTH


def _packet_entry(number: str, sendingid: int, code: int, price: int) -> dict[str, Any]:
    text = _PACKET_SUCCESS_TEXT if code == PACKET_SUCCESS else PACKET_TEXTS.get(code, "Unknown")
    return {
        "packet": {
            "number": number,
            "sendingid": sendingid,
            "sendingstatus": code,
            "sendingstatustext": text,
            "price": price,
        }
    }
