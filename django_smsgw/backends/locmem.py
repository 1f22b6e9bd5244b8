"""An in-memory backend for tests: every packet is accepted and appended to ``outbox``."""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol.payloads import OutgoingPacket
from ..protocol.replies import SendReply
from .base import AcceptingBackend

# Like django.core.mail.outbox: what was "sent", in order. Tests may clear it.
outbox: list[OutboxMessage] = []


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    channel: str
    number: str
    message: str
    sending_id: int
    packet: OutgoingPacket


class LocmemBackend(AcceptingBackend):
    def send_packets(self, channel: str, packets: list[OutgoingPacket]) -> SendReply:
        reply = self.accept(packets)
        outbox.extend(
            OutboxMessage(channel, packet.number, packet.message, result.sending_id, packet)
            for packet, result in zip(packets, reply.packets, strict=True)
        )
        return reply
