"""The mixed ICS benchmark capture: real conversations from the corpus, replayed as many flows.

Application payloads of one conversation per protocol are taken from the shared corpus (Modbus,
DNP3, S7comm, IEC 104, ENIP/CIP, OPC UA, BACnet, MQTT) plus synthetic plain TCP and UDP, then
written again and again as new flows (new addresses, ports and sequence numbers) with raw struct
packing: handshake, request/response segments with their ACKs, FIN. Some segments carry two PDUs,
some are retransmitted, some arrive split and out of order, and some flows are left open so the
sensor must evict them on idle timeout. Deterministic (seeded) and cached under .cache/bench/.

    python -m benchmarks.capture [PACKETS]   # writes .cache/bench/ics-mix-<PACKETS>.pcap
"""

from __future__ import annotations

import os
import random
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

from . import CACHE

CORPUS = Path(os.environ.get("QINLING_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "corpus"))
if not CORPUS.exists():
    CORPUS = Path("/work/shared/corpus")
MODBUS_PCAP = Path(__file__).resolve().parents[1] / "pcaps" / "modbus" / "modbus_plant_attack.pcap"

# (name, capture, transport, server port, relative weight of its flows in the mix)
SOURCES = (
    ("modbus", str(MODBUS_PCAP), "tcp", 502, 3),
    ("dnp3", "icsnpp-dnp3/traces/dnp3_example.pcap", "tcp", 20000, 2),
    ("s7comm", "icsnpp-s7comm/traces/snap7.pcap", "tcp", 102, 2),
    ("iec104", "zeek-iec104/traces/iec104.pcap", "tcp", 2404, 2),
    ("enip", "icsnpp-enip/traces/enip_cip_example.pcap", "tcp", 44818, 2),
    ("opcua", "icsnpp-opcua-binary/traces/open62541_client-server_mainloop.pcap", "tcp", 4840, 1),
    ("bacnet", "icsnpp-bacnet/traces/bacnet_example.pcap", "udp", 47808, 2),
    ("mqtt", "zeek/traces/mqtt.pcap", "tcp", 1883, 1),
)
MAX_MESSAGES = 60  # per conversation script
Script = list[tuple[bool, bytes]]  # (sent by the client, payload)

_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
_REC = struct.Struct("<IIII")
_ETH = struct.Struct("!6s6sH")
_IP4 = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIBBHHH")
_UDP = struct.Struct("!HHHH")
_MAC_C = bytes.fromhex("020000000001")
_MAC_S = bytes.fromhex("020000000002")
SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10


def path_for(packets: int) -> Path:
    return CACHE / f"ics-mix-{packets}.pcap"


def scripts() -> dict[str, tuple[str, int, list[Script]]]:
    """name -> (transport, server port, conversations), each the payloads of one corpus flow in order."""
    from sensors.packet import PROTO_TCP, parse
    from sensors.pcapfile import read_capture

    out: dict[str, tuple[str, int, list[Script]]] = {}
    for name, rel, transport, port, _w in SOURCES:
        path = Path(rel) if os.path.isabs(rel) else CORPUS / rel
        flows: dict[tuple[bytes, bytes, int, int], Script] = {}
        seen: set[tuple[tuple[bytes, bytes, int, int], bool, int]] = set()
        for _frame, _ts, linktype, data in read_capture(path):
            p = parse(linktype, data)
            if p is None or not p.payload or (p.sport != port and p.dport != port):
                continue
            if (p.proto == PROTO_TCP) != (transport == "tcp"):
                continue
            to_server = p.dport == port
            key = (p.src, p.dst, p.sport, p.dport) if to_server else (p.dst, p.src, p.dport, p.sport)
            if p.proto == PROTO_TCP:  # the corpus' own retransmissions: we add ours on purpose
                if (key, to_server, p.seq) in seen:
                    continue
                seen.add((key, to_server, p.seq))
            script = flows.setdefault(key, [])
            if len(script) < MAX_MESSAGES:
                script.append((to_server, bytes(p.payload)))
        convs = [s for s in flows.values() if len(s) >= 2 and any(d for d, _ in s) and any(not d for d, _ in s)]
        if not convs:
            convs = [s for s in flows.values() if s]
        if not convs:
            raise RuntimeError(f"{path}: no {name} conversation on {transport}/{port}")
        convs.sort(key=len, reverse=True)
        out[name] = (transport, port, convs[:4])
    rnd = random.Random(7)
    # Plain TCP (an HTTP-like exchange) and UDP (a syslog-like stream), not decoded beyond the flow.
    http = [[(True, b"GET /status HTTP/1.1\r\nHost: hmi\r\n\r\n"), (False, b"HTTP/1.1 200 OK\r\nContent-Length: 512\r\n\r\n" + rnd.randbytes(512))] * 3]
    out["tcp"] = ("tcp", 8080, http)
    out["udp"] = ("udp", 514, [[(True, b"<134>plc01 " + rnd.randbytes(80)) for _ in range(6)]])
    return out


def _ip_csum(hdr: bytes) -> int:
    s = sum(struct.unpack("!10H", hdr))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


class _Writer:
    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.count = 0
        self.ipid = 0

    def frame(self, t: float, src: bytes, dst: bytes, l4: bytes, proto: int, client: bool) -> None:
        self.ipid = (self.ipid + 1) & 0xFFFF
        hdr = _IP4.pack(0x45, 0, 20 + len(l4), self.ipid, 0x4000, 64, proto, 0, src, dst)
        hdr = hdr[:10] + struct.pack("!H", _ip_csum(hdr)) + hdr[12:]
        eth = _ETH.pack(_MAC_S, _MAC_C, 0x0800) if client else _ETH.pack(_MAC_C, _MAC_S, 0x0800)
        n = 14 + 20 + len(l4)
        sec = int(t)
        self.parts.append(_REC.pack(sec, int((t - sec) * 1e6), n, n) + eth + hdr + l4)
        self.count += 1


def _conversation(w: _Writer, rnd: random.Random, t: float, dt: float, cid: int, transport: str, port: int,
                  script: Script) -> Iterator[float]:
    """Write one flow, yielding after each frame so flows interleave; yields the capture time used."""
    client = bytes((10, (cid >> 16) & 0xFF, (cid >> 8) & 0xFF, cid & 0xFF or 1))
    server = bytes((192, 168, (cid >> 8) & 0x0F, (cid % 250) + 1))
    cport = 1024 + cid % 64000
    if transport == "udp":
        for to_server, payload in script:
            s, d, sp, dp = (client, server, cport, port) if to_server else (server, client, port, cport)
            w.frame(t, s, d, _UDP.pack(sp, dp, 8 + len(payload), 0) + payload, 17, to_server)
            t += dt
            yield t
        return
    seq = {True: rnd.getrandbits(32), False: rnd.getrandbits(32)}

    def seg(to_server: bool, flags: int, payload: bytes = b"", at: int | None = None) -> None:
        s, d, sp, dp = (client, server, cport, port) if to_server else (server, client, port, cport)
        sq = seq[to_server] if at is None else at
        tcp = _TCP.pack(sp, dp, sq & 0xFFFFFFFF, seq[not to_server] & 0xFFFFFFFF if flags & ACK else 0, 0x50, flags, 8192, 0, 0)
        w.frame(t, s, d, tcp + payload, 6, to_server)

    seg(True, SYN); seq[True] += 1; t += dt; yield t  # noqa: E702
    seg(False, SYN | ACK); seq[False] += 1; t += dt; yield t  # noqa: E702
    seg(True, ACK); t += dt; yield t  # noqa: E702
    i = 0
    while i < len(script):
        to_server, payload = script[i]
        i += 1
        r = rnd.random()
        if r < 0.08 and i < len(script) and script[i][0] == to_server:
            payload += script[i][1]  # two PDUs in one segment
            i += 1
        if r > 0.985 and len(payload) > 8:  # split in two, second half first
            half = len(payload) // 2
            start = seq[to_server]
            seg(to_server, PSH | ACK, payload[half:], at=start + half); t += dt; yield t  # noqa: E702
            seg(to_server, ACK, payload[:half], at=start); t += dt; yield t  # noqa: E702
        else:
            seg(to_server, PSH | ACK, payload)
            t += dt
            yield t
            if 0.95 < r <= 0.985:  # retransmission
                seg(to_server, PSH | ACK, payload); t += dt; yield t  # noqa: E702
        seq[to_server] += len(payload)
        if not to_server and rnd.random() < 0.5:
            seg(True, ACK); t += dt; yield t  # noqa: E702
    if rnd.random() < 0.05:
        return  # left open: the sensor must expire it on idle timeout
    seg(True, FIN | ACK); seq[True] += 1; t += dt; yield t  # noqa: E702
    seg(False, FIN | ACK); seq[False] += 1; t += dt; yield t  # noqa: E702
    seg(True, ACK); t += dt; yield t  # noqa: E702


def frames(packets: int, *, seed: int = 1, concurrent: int = 48, step: float = 0.0005) -> Iterator[bytes]:
    """pcap bytes (header, then chunks of records) of at least `packets` frames."""
    convs = scripts()
    names = [n for n in convs]
    weights = [next((s[4] for s in SOURCES if s[0] == n), 1) for n in names]
    rnd = random.Random(seed)
    w = _Writer()
    yield _PCAP_HEADER
    t = 1_700_000_000.0
    live: list[Iterator[float]] = []
    cid = 0
    while w.count < packets:
        while len(live) < concurrent:
            name = rnd.choices(names, weights)[0]
            transport, port, scr = convs[name]
            cid += 1
            live.append(_conversation(w, rnd, t, step, cid, transport, port, rnd.choice(scr)))
        k = rnd.randrange(len(live))
        try:
            t = max(t, next(live[k]))
        except StopIteration:
            live[k] = live[-1]
            live.pop()
        t += step / 4
        if len(w.parts) >= 4096:
            yield b"".join(w.parts)
            w.parts.clear()
    yield b"".join(w.parts)


def ensure(packets: int) -> Path:
    """The capture of `packets` frames, generated once (written to a temporary name, then renamed)."""
    path = path_for(packets)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        for chunk in frames(packets):
            f.write(chunk)
    tmp.rename(path)
    return path


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    print(ensure(n))
