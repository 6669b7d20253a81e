"""ARP decoder state: one event per frame; requests remembered briefly so a reply can be matched or called unsolicited."""

from __future__ import annotations

import logging
from collections import OrderedDict

import msgspec

from pipeline.schema import Anomaly, Event

from ..base import Direction, make_event
from ..ether import Envelopes, EtherFrame
from . import parser as p

log = logging.getLogger(__name__)
DATASET = "arp"
ANSWER_WITHIN = 5.0  # seconds: a reply later than this after its request is unsolicited
MAX_PENDING = 4096

_MESSAGES = {
    p.TRUNCATED: "ARP packet shorter than its header or its declared addresses",
    p.UNSUPPORTED_FORMAT: "ARP for another hardware or protocol type (not Ethernet/IPv4): header only",
    p.UNKNOWN_OPCODE: "ARP opcode not defined by RFC 826/903/2390",
    p.ETHERNET_MISMATCH: "Ethernet source MAC differs from the ARP sender MAC",
}


class ArpDecoder:
    """Every ARP frame of a capture (a layer-2 decoder: see sensors/decoders/ether.py)."""

    def __init__(self) -> None:
        self._env = Envelopes()
        # (requester IP, asked IP) -> (epoch, frame) of the latest request not answered yet: a second
        # answer to one request (an attacker racing the owner) is unsolicited
        self._pending: OrderedDict[tuple[str, str], tuple[float, int]] = OrderedDict()

    def feed(self, data: memoryview, frame: EtherFrame) -> list[Event]:
        try:
            arp, code = p.parse(data)
            reply = arp is not None and arp.opcode in (2, 4, 9)
            if reply:  # the exchange belongs to whoever asked: the requester is its originator
                meta, direction = self._env.meta(frame, frame.dst_mac, frame.src_mac), Direction.TO_CLIENT
            else:
                meta, direction = self._env.meta(frame, frame.src_mac, frame.dst_mac), Direction.TO_SERVER
            if arp is None or code in (p.TRUNCATED, p.UNSUPPORTED_FORMAT):
                return [make_event(meta, direction, dataset=DATASET, action="anomaly", arp=arp,
                                   anomaly=Anomaly(code=code or p.TRUNCATED, message=_MESSAGES[code or p.TRUNCATED]))]
            now = frame.time.timestamp()
            if arp.sender_mac is not None and frame.src_mac is not None and arp.sender_mac != frame.src_mac:
                arp = msgspec.structs.replace(arp, ethernet_mismatch=True)
                code = code or p.ETHERNET_MISMATCH
            if arp.opcode == 1 and arp.sender_ip and arp.target_ip and not arp.gratuitous:
                key = (arp.sender_ip, arp.target_ip)
                self._pending[key] = (now, frame.frame)
                self._pending.move_to_end(key)
                if len(self._pending) > MAX_PENDING:
                    self._pending.popitem(last=False)
            elif arp.opcode == 2 and not arp.gratuitous and arp.sender_ip and arp.target_ip:
                asked = self._pending.pop((arp.target_ip, arp.sender_ip), None)  # one request, one answer
                if asked is not None and 0.0 <= now - asked[0] <= ANSWER_WITHIN:
                    arp = msgspec.structs.replace(arp, request_frame=asked[1])
                else:
                    arp = msgspec.structs.replace(arp, unsolicited=True)
            action = "announce" if arp.gratuitous else ("reply" if reply else "request")
            anomaly = Anomaly(code=code, message=_MESSAGES[code]) if code else None
            return [make_event(meta, direction, dataset=DATASET, action=action, anomaly=anomaly, arp=arp)]
        except Exception as exc:  # a decoder never raises: a bug becomes an anomaly event
            log.debug("ARP decoder error on frame %s", frame.frame, exc_info=True)
            return [self._env.decoder_error(frame, DATASET, exc)]

    def close(self) -> list[Event]:
        self._pending.clear()
        return []
