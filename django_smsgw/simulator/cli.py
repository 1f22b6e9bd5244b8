"""Options and the serve loop shared by `python -m django_smsgw.simulator` and
`manage.py smsgw_simulator`, so the two accept exactly the same arguments."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from collections.abc import Callable, Mapping
from typing import Any

from django_smsgw.protocol.codes import CHANNELS

from .server import Simulator

DEFAULT_PORT = 8787
DEFAULT_API_KEY = "simulator-key"
API_KEY_ENVIRONMENT_VARIABLE = "SMSGW_API_KEY"
UNDELIVERED = 4  # deliverystatus "Delivered Error"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument(
        "--api-key",
        help=f"the key requests must carry (default: ${API_KEY_ENVIRONMENT_VARIABLE}, "
        f"else {DEFAULT_API_KEY!r})",
    )
    parser.add_argument("--balance", type=int, help="starting balance of every channel, in rupiah")
    parser.add_argument(
        "--callback-delay", type=float, default=1.0, help="seconds between delivery updates"
    )
    parser.add_argument(
        "--callback-batch", type=int, default=100, help="most updates in one callback POST"
    )
    parser.add_argument("--duplicates", action="store_true", help="POST every callback twice")
    parser.add_argument(
        "--reorder", action="store_true", help="deliver each message's updates out of order"
    )
    parser.add_argument(
        "--quirky", action="store_true", help="answer in the provider's odd but tolerated shapes"
    )
    parser.add_argument(
        "--undelivered-suffix",
        dest="undelivered_suffixes",
        action="extend",
        nargs="+",
        default=[],
        metavar="SUFFIX",
        help='numbers ending in SUFFIX end "4 Delivered Error"',
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m django_smsgw.simulator",
        description="Run a simulator of the SMS gateway provider until Ctrl-C.",
    )
    add_arguments(parser)
    return parser


def simulator_from_options(options: Mapping[str, Any]) -> Simulator:
    """A Simulator configured from parsed options (extra keys, such as Django's, are ignored)."""
    api_key = options["api_key"] or os.environ.get(API_KEY_ENVIRONMENT_VARIABLE) or DEFAULT_API_KEY
    balance = options["balance"]
    return Simulator(
        api_key=api_key,
        balances=None if balance is None else dict.fromkeys(CHANNELS, balance),
        host=options["host"],
        port=options["port"],
        callback_delay=options["callback_delay"],
        callback_batch=options["callback_batch"],
        duplicates=options["duplicates"],
        reorder=options["reorder"],
        delivery_outcomes=dict.fromkeys(options["undelivered_suffixes"], UNDELIVERED),
        quirky=options["quirky"],
    )


def serve_until_signalled(simulator: Simulator, announce: Callable[[str], None]) -> None:
    """Start `simulator`, announce where it listens, stop it on SIGINT or SIGTERM."""
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop_requested.set()

    previous = {
        signum: signal.signal(signum, request_stop) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        simulator.start()
        announce(f"SMS gateway simulator listening at {simulator.base_url}")
        announce(f"API key: {simulator.api_key}")
        announce("Stop with Ctrl-C.")
        while not stop_requested.wait(1.0):
            pass
    finally:
        simulator.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
