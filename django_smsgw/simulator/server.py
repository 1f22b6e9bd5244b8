"""The simulator: the provider's endpoints over real HTTP, faults on demand, delivery callbacks.

    with Simulator(api_key="test-key", callback_delay=0.05) as sim:
        requests.post(f"{sim.base_url}/sms/api_sms_otp_send_json.php", json={...})
        sim.inject("http500")          # the next send request gets an HTML error page
        sim.state()["packets_accepted"]

A separate process is driven the same way over HTTP: `POST /_simulator/faults`,
`GET /_simulator/state`, `POST /_simulator/reset`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from django_smsgw.protocol.codes import CHANNELS

from .callbacks import CallbackDispatcher
from .faults import GARBAGE, GLOBAL, HTTP500, PACKET, SLOW, FaultQueue, make_fault
from .provider import BALANCE, SEND, Provider, dumps, global_error
from .quirks import QuirkRotation

logger = logging.getLogger("django_smsgw.simulator")

PROVIDER_ROUTES = {
    f"/sms/api_sms_{channel}_{kind}_json.php": (kind, channel)
    for channel in CHANNELS
    for kind in (SEND, BALANCE)
}
STATE_PATH = "/_simulator/state"
FAULTS_PATH = "/_simulator/faults"
RESET_PATH = "/_simulator/reset"

JSON_TYPE = "application/json"
HTML_TYPE = "text/html; charset=UTF-8"
ERROR_PAGE = (
    b'<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n'
    b"<title>500 Internal Server Error</title>\n</head><body>\n<h1>Internal Server Error</h1>\n"
    b"<p>The server encountered an internal error or misconfiguration and was unable to "
    b"complete your request.</p>\n</body></html>\n"
)
# What a PHP endpoint prints when its database is away: a warning, then the page's HTML.
GARBAGE_PAGE = (
    b"<br />\n<b>Warning</b>:  mysqli_connect(): (HY000/2002): Connection refused in "
    b"<b>/var/www/html/sms/api_sms_send_json.php</b> on line <b>7</b><br />\n"
    b"<html><body>Database connection failed</body></html>\n"
)


class Reply(NamedTuple):
    status: int
    body: bytes
    content_type: str = JSON_TYPE
    delay: float = 0.0  # seconds to wait before answering
    drop: bool = False  # close the connection instead of answering


class Simulator:
    """A fake of the provider listening on a real port, with the state tests look at."""

    def __init__(
        self,
        api_key: str = "test-key",
        balances: Mapping[str, int] | None = None,
        prices: Mapping[str, int] | None = None,
        expires_on: dt.date | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        callback_delay: float = 1.0,
        callback_batch: int = 100,
        duplicates: bool = False,
        reorder: bool = False,
        delivery_outcomes: Mapping[str, int] | None = None,
        quirky: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.quirky = quirky
        self._provider = Provider(api_key, dict(balances or {}), dict(prices or {}), expires_on)
        self._callbacks = CallbackDispatcher(
            delay=callback_delay,
            batch=callback_batch,
            duplicates=duplicates,
            reorder=reorder,
            outcomes=delivery_outcomes,
        )
        self._faults = FaultQueue()
        self._quirks = QuirkRotation()
        self._lifecycle = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def api_key(self) -> str:
        return self._provider.api_key

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulator is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Simulator:
        """Serve in background threads; returns self."""
        with self._lifecycle:
            if self._server is not None:
                raise RuntimeError("the simulator is already running")
            server = _Server((self.host, self.port), self)
            self._callbacks.start()
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},  # stop() waits up to one poll interval
                name="smsgw-simulator",
                daemon=True,
            )
            self._server = server
            self._thread.start()
        logger.info("simulator listening at %s", self.base_url)
        return self

    def stop(self) -> None:
        """Shut down the server and the callback thread; pending callbacks are dropped."""
        with self._lifecycle:
            server, thread = self._server, self._thread
            if server is None or thread is None:
                return
            self._server = self._thread = None
            server.stopping.set()
            server.shutdown()
            server.server_close()
            server.close_connections()
            thread.join()
            self._callbacks.stop()
        logger.info("simulator stopped")

    def __enter__(self) -> Simulator:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def inject(self, fault: str, count: int = 1, **params: Any) -> None:
        """Queue `fault` for the next `count` requests of `endpoint` ("send", "balance", "any").

        Faults: "global" (code=N), "packet" (code=N), "http500" (process=False), "garbage"
        (process=True), "slow" (seconds=S), "drop" (process=True). ValueError on a typo.
        """
        self._faults.add(make_fault(fault, count, **params))
        logger.info("fault queued: %s x%d %s", fault, count, params or "")

    def state(self) -> dict[str, Any]:
        state = self._provider.snapshot()
        state.update(self._callbacks.counters())
        state["callbacks_pending"] = self._callbacks.pending()
        return state

    def received_numbers(self) -> list[str]:
        """Every accepted number (`62…` form) in order; a number sent twice appears twice."""
        return self._provider.received_numbers()

    def reset(self) -> None:
        """Forget faults, counters, messages and pending callbacks; balances back to initial."""
        self._faults.clear()
        self._provider.reset()
        self._callbacks.clear()
        self._quirks.reset()

    def answer(self, kind: str, channel: str, body: bytes) -> Reply:
        """The provider's reply to one request on an endpoint of `kind` for `channel`."""
        self._provider.count_request(kind)
        fault = self._faults.take(kind)
        if fault is None:
            return self._json_reply(kind, self._process(kind, channel, body))
        logger.debug("applying fault %s to a %s request", fault.kind, kind)
        if fault.kind == GLOBAL:
            return self._json_reply(kind, global_error(kind, fault.code))
        if fault.kind == PACKET:
            return self._json_reply(kind, self._process(kind, channel, body, fault.code))
        if fault.kind == SLOW:
            reply = self._json_reply(kind, self._process(kind, channel, body))
            return reply._replace(delay=fault.seconds)
        if fault.process:
            self._process(kind, channel, body)
        if fault.kind == HTTP500:
            return Reply(500, ERROR_PAGE, HTML_TYPE)
        if fault.kind == GARBAGE:
            return Reply(200, GARBAGE_PAGE, HTML_TYPE)
        return Reply(0, b"", drop=True)  # the remaining kind: DROP

    def _process(
        self, kind: str, channel: str, body: bytes, refuse_packets_with: int | None = None
    ) -> dict[str, Any]:
        if kind == BALANCE:
            return self._provider.balance(channel, body)
        outcome = self._provider.send(channel, body, refuse_packets_with)
        if outcome.callback_url and outcome.accepted:
            self._callbacks.schedule(outcome.callback_url, outcome.accepted)
        return outcome.response

    def _json_reply(self, kind: str, response: dict[str, Any]) -> Reply:
        if self.quirky:
            response = self._quirks.apply(kind, response)
        return Reply(200, dumps(response))

    def control(self, method: str, path: str, body: bytes) -> Reply | None:
        """The `/_simulator/...` endpoints; None for any other path."""
        if (method, path) == ("GET", STATE_PATH):
            return Reply(200, dumps(self.state()))
        if (method, path) == ("POST", RESET_PATH):
            self.reset()
            return Reply(200, dumps({"reset": True}))
        if (method, path) == ("POST", FAULTS_PATH):
            try:
                params = json.loads(body)
                if not isinstance(params, dict) or not isinstance(params.get("fault"), str):
                    raise ValueError('expected a JSON object with a "fault" name')
                self.inject(params.pop("fault"), **params)
            except (ValueError, TypeError) as exc:
                return Reply(400, dumps({"error": str(exc)}))
            return Reply(200, dumps({"queued": True}))
        if path in (STATE_PATH, RESET_PATH, FAULTS_PATH):
            return Reply(405, dumps({"error": f"{method} not allowed"}))
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], simulator: Simulator) -> None:
        self.simulator = simulator
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """End idle keep-alive connections, so a stopped simulator answers nobody."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a client's session reuses its connection
    server_version = "Apache"
    sys_version = ""
    disable_nagle_algorithm = True  # headers and body are two writes; don't wait for an ACK
    timeout = 60  # an idle keep-alive connection is closed after this
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def do_POST(self) -> None:
        self._route("POST")

    def do_GET(self) -> None:
        self._route("GET")

    def _route(self, method: str) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.send_error(411, "Length Required")
            return
        try:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        except ValueError:
            self.send_error(400, "Bad Content-Length")
            return
        path = urlsplit(self.path).path
        simulator = self.server.simulator
        route = PROVIDER_ROUTES.get(path)
        # The provider's PHP scripts answer any method; a GET simply has no JSON body.
        reply = simulator.answer(*route, body) if route else simulator.control(method, path, body)
        if reply is None:
            self.send_error(404, "Not Found")
            return
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        if reply.delay:
            self.server.stopping.wait(reply.delay)
        if reply.drop:
            self.close_connection = True
            return
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            # A client that timed out (a "slow" fault) is gone; its messages were still accepted.
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        logger.debug("%s %s", self.address_string(), format % args)
