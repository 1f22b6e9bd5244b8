"""Request bodies and endpoints (provider-api.md §2)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus
from zoneinfo import ZoneInfo

from .codes import CHANNELS

# The provider reads `sendingdatetime` as Western Indonesia time (WIB, UTC+7).
JAKARTA = ZoneInfo("Asia/Jakarta")


@dataclass(frozen=True, slots=True)
class OutgoingPacket:
    """One message as it goes on the wire."""

    number: str  # E.164, "+62…"
    message: str
    send_at: dt.datetime | None = None


def endpoint(base_url: str, channel: str, kind: str) -> str:
    """``{server}/sms/api_sms_{channel}_{send|balance}_json.php``."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; expected one of {', '.join(CHANNELS)}")
    if kind not in ("send", "balance"):
        raise ValueError(f"unknown endpoint kind {kind!r}")
    return f"{base_url.rstrip('/')}/sms/api_sms_{channel}_{kind}_json.php"


def sending_datetime(send_at: dt.datetime | None) -> str:
    """``yyyy-mm-dd hh:mm:ss`` in Asia/Jakarta, or "" for now."""
    if send_at is None:
        return ""
    if send_at.tzinfo is None or send_at.utcoffset() is None:
        raise ValueError("send_at must be an aware datetime")
    return send_at.astimezone(JAKARTA).strftime("%Y-%m-%d %H:%M:%S")


def send_body(
    api_key: str,
    callback_url: str,
    packets: list[OutgoingPacket],
    *,
    urlencode_message: bool = False,
) -> dict[str, Any]:
    # The provider accepts 0812…, 62812… and +62812…; we send the 62… form it echoes back,
    # so reply packets can be checked against what we sent.
    return {
        "apikey": api_key,
        "callbackurl": callback_url,
        "datapacket": [
            {
                "number": packet.number.lstrip("+"),
                "message": quote_plus(packet.message) if urlencode_message else packet.message,
                "sendingdatetime": sending_datetime(packet.send_at),
            }
            for packet in packets
        ],
    }


def balance_body(api_key: str) -> dict[str, Any]:
    return {"apikey": api_key}
