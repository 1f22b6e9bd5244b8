"""The provider's numeric codes (provider-api.md §1) and what each means for a message.

Decisions are taken on these numbers only, never on the status texts: the provider varies
their case ("Success" / "success").
"""

from __future__ import annotations

# The provider's products. Each has its own endpoints and its own balance.
CHANNELS = ("reguler", "masking", "otp")

MAX_PACKETS_PER_REQUEST = 1000
MAX_MESSAGE_LENGTH = 480

# Status names of django_smsgw.models.Status, as plain strings so this module needs no ORM.
QUEUED = "queued"
SENDING = "sending"
ACCEPTED = "accepted"
SCHEDULED = "scheduled"
SENT = "sent"
DELIVERED = "delivered"
UNDELIVERED = "undelivered"
REJECTED = "rejected"
FAILED = "failed"
UNKNOWN = "unknown"

GLOBAL_SUCCESS = 10
GLOBAL_TEXTS = {
    10: "Success",
    20: "Json Post Error",
    30: "ApiKey not register",
    40: "Ip address not register",
    50: "Expired Balance",
    55: "Maximum Data",
}
# Balance requests share 10/20/30/40 and add two of their own.
BALANCE_GLOBAL_TEXTS = {
    10: "Success",
    20: "Json Post Error",
    25: "Error Check Balance",
    30: "ApiKey not register",
    35: "Check Balance Limit",
    40: "Ip address not register",
}

PACKET_SUCCESS = 10
PACKET_TEXTS = {
    10: "Success",
    60: "Invalid Number",
    70: "Invalid Message",
    80: "Minimum Balance",
    90: "System Error",
}

DELIVERY_TEXTS = {
    1: "Schedule",
    2: "Sent",
    3: "Delivered Success",
    4: "Delivered Error",
    5: "System Failed",
    6: "Saldo Minus/Expired",
    7: "Reject",
    8: "System Error",
    9: "Duplicate message",
    10: "Delivered Success Backup",
}

# SPEC §4: which status each code leads to.
GLOBAL_STATUS = {20: REJECTED, 30: REJECTED, 40: REJECTED, 50: REJECTED, 55: REJECTED}
PACKET_STATUS = {10: ACCEPTED, 60: REJECTED, 70: REJECTED, 80: REJECTED, 90: FAILED}
DELIVERY_STATUS = {
    1: SCHEDULED,
    2: SENT,
    3: DELIVERED,
    10: DELIVERED,
    4: UNDELIVERED,
    7: UNDELIVERED,
    9: REJECTED,
    5: FAILED,
    6: FAILED,
    8: FAILED,
}


def status_for_global(code: int) -> str:
    """A whole send request refused with `code`. An unlisted code is a provider-side failure."""
    return GLOBAL_STATUS.get(code, FAILED)


def status_for_packet(code: int) -> str:
    """One packet's `sendingstatus`. An unlisted code leaves the message's fate unknown."""
    return PACKET_STATUS.get(code, UNKNOWN)


def status_for_delivery(code: int) -> str | None:
    """One callback's `deliverystatus`; None for a code this table does not know."""
    return DELIVERY_STATUS.get(code)


def describe(code: int | None, text: str | None, table: dict[int, str]) -> str:
    """A readable reason: the provider's text, else ours, else a clear 'unknown code'."""
    known = table.get(code) if code is not None else None
    if known is None:
        return f"unknown code {code}" + (f" ({text})" if text else "")
    return f"{code} {text or known}"
