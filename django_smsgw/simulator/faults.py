"""Injectable faults: what a flaky provider does to the next few requests."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from .provider import BALANCE, SEND

GLOBAL = "global"  # a global status code, nothing processed
PACKET = "packet"  # every packet refused with one sendingstatus
HTTP500 = "http500"  # an HTML error page with HTTP 500
GARBAGE = "garbage"  # HTTP 200 with a body that is not JSON
SLOW = "slow"  # the answer comes after `seconds`
DROP = "drop"  # the connection closes without an answer

ANY = "any"
ENDPOINTS = (SEND, BALANCE, ANY)

# Each fault's own parameters and their defaults (None = required).
_PARAMETERS: dict[str, dict[str, Any]] = {
    GLOBAL: {"code": None},
    PACKET: {"code": None},
    HTTP500: {"process": False},
    GARBAGE: {"process": True},
    SLOW: {"seconds": None},
    DROP: {"process": True},
}
FAULTS = tuple(_PARAMETERS)


@dataclass
class Fault:
    kind: str
    endpoint: str
    remaining: int
    code: int | None = None
    seconds: float = 0.0
    process: bool = True

    def matches(self, endpoint: str) -> bool:
        if self.kind == PACKET and endpoint != SEND:
            return False
        return self.endpoint in (endpoint, ANY)


def make_fault(fault: str, count: int = 1, endpoint: str = SEND, **params: Any) -> Fault:
    """Validate `Simulator.inject`'s arguments; a typo raises ValueError rather than no fault."""
    if fault not in _PARAMETERS:
        raise ValueError(f"unknown fault {fault!r}; expected one of {', '.join(FAULTS)}")
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {', '.join(ENDPOINTS)}")
    if fault == PACKET and endpoint == BALANCE:
        raise ValueError("a packet fault applies to send requests only")
    if not isinstance(count, int) or count < 1:
        raise ValueError("count must be a positive integer")
    allowed = _PARAMETERS[fault]
    unknown = set(params) - set(allowed)
    if unknown:
        raise ValueError(f"{fault} fault takes no {', '.join(sorted(unknown))}")
    values = {**allowed, **params}
    missing = [name for name, value in values.items() if value is None]
    if missing:
        raise ValueError(f"{fault} fault needs {', '.join(missing)}")
    if "code" in values and not isinstance(values["code"], int):
        raise ValueError("code must be an integer")
    if "seconds" in values and not isinstance(values["seconds"], (int, float)):
        raise ValueError("seconds must be a number")
    if "process" in values and not isinstance(values["process"], bool):
        raise ValueError("process must be true or false")
    return Fault(kind=fault, endpoint=endpoint, remaining=count, **values)


class FaultQueue:
    """Faults in the order they were injected; each serves its next `count` matching requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take(self, endpoint: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(endpoint):
                    fault.remaining -= 1
                    if not fault.remaining:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
