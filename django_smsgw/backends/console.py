"""A development backend: writes each message to a stream (stdout) and accepts it."""

from __future__ import annotations

import sys
import threading

from ..protocol.payloads import OutgoingPacket, sending_datetime
from ..protocol.replies import SendReply
from .base import AcceptingBackend


class ConsoleBackend(AcceptingBackend):
    def __init__(self, stream=None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def send_packets(self, channel: str, packets: list[OutgoingPacket]) -> SendReply:
        reply = self.accept(packets)
        with self._lock:
            for packet, result in zip(packets, reply.packets, strict=True):
                when = sending_datetime(packet.send_at) or "now"
                self.stream.write(
                    f"[smsgw {channel}] to {packet.number} at {when} "
                    f"(sending id {result.sending_id}): {packet.message}\n"
                )
            self.stream.flush()
        return reply
