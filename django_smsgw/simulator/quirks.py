"""The odd but tolerated answer shapes of provider-api.md §3, served in rotation."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

from .provider import BALANCE, SEND

Response = dict[str, Any]

_NUMERIC_KEYS = frozenset({"globalstatus", "sendingid", "sendingstatus", "price", "Balance"})


def numbers_as_strings(response: Response) -> Response:
    """`"globalstatus": "10"`, `"price": "250"`, `"Balance": "880"`, ..."""

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                key: str(item) if key in _NUMERIC_KEYS else convert(item)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [convert(item) for item in value]
        return value

    return convert(response)


def bare_object(response: Response) -> Response:
    """`{"sending_respon": {...}}` instead of a list of one object."""
    return {key: value[0] for key, value in response.items()}


def unwrapped_packets(response: Response) -> Response:
    """datapacket entries without their `{"packet": ...}` wrapper."""
    (outer,) = response["sending_respon"]
    if "datapacket" not in outer:
        return response
    packets = [entry["packet"] for entry in outer["datapacket"]]
    return {"sending_respon": [{**outer, "datapacket": packets}]}


def lowercase_balance(response: Response) -> Response:
    """`"balance"` instead of `"Balance"`."""
    (outer,) = response["balance_respon"]
    renamed = {("balance" if key == "Balance" else key): value for key, value in outer.items()}
    return {"balance_respon": [renamed]}


ROTATIONS: dict[str, tuple[Callable[[Response], Response], ...]] = {
    SEND: (numbers_as_strings, bare_object, unwrapped_packets),
    BALANCE: (numbers_as_strings, bare_object, lowercase_balance),
}


class QuirkRotation:
    """Each endpoint kind cycles through its odd shapes, one per answer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._cycles = {kind: itertools.cycle(shapes) for kind, shapes in ROTATIONS.items()}

    def apply(self, kind: str, response: Response) -> Response:
        with self._lock:
            shape = next(self._cycles[kind])
        return shape(response)
