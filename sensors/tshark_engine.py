"""`--engine tshark`: every layer tshark dissects, as events of the shared schema (breadth, and a cross-check of the native decoders).

How it runs (measured on one core, 20,000-frame ICS mix, CPU seconds): pyshark's default mode
~300 pkt/s, its `use_ek` ~2,300, `use_json` ~2,100; raw `tshark -T ek` ~3,000, `-T json` ~3,100,
`-T fields` ~14,500. pyshark is 6x slower than the fastest raw mode, and `-T fields` cannot carry
the fields of a protocol nobody listed, so this engine streams raw `tshark -T json` through a
subprocess, restricted with `-J` to the application layers present (found by a cheap
`-T fields -e frame.protocols` pass) and parsed per packet with msgspec. pyshark is used only to
locate tshark.

The envelope does not come from tshark: the capture is also read once by the native reader and
flow table (`Sensor` with decoders that do nothing), so `source`/`destination`, direction and
`network.community_id` are exactly the native engine's for the same frame, and the native flow
records (`event.dataset: flow`) are emitted too. Event ids use `event_id(..., kind="ts")`.

Layers of protocols with a schema struct fill its identifying fields, with names from the native
decoders' constants:

    modbus   mbtcp.trans_id/unit_id, modbus.func_code (exception bit split off), modbus.exception_code
    dnp3     dnp3.src, dnp3.dst, dnp3.al.func (absent: link-only frame), dnp3.al.seq
    s7comm   s7comm.header.rosctr/pduref, s7comm.param.func, userdata funcgroup/subfunc;
             COTP connection PDUs (cotp.type) as protocol "cotp"; s7comm_plus opcode
    iec104   iec60870_104.type (I/S/U), utype, iec60870_asdu.typeid/causetx/addr
    enip     enip.command/session/status; one event per cip.sc (cip.rr = response); cip_io
    opcua    opcua.transport.type, opcua.servicenodeid.numeric
    bacnet   bvlc.function, bacnet.mesgtyp, bacapp.type/invoke_id/confirmed_service/unconfirmed_service
    mqtt     mqtt.msgtype, mqtt.msgid, mqtt.topic

Every other non-carrier layer becomes `Event.tshark` (protocol, bounded fields), `event.dataset`
= tshark's layer name.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from typing import Any

import msgspec

from pipeline.protocols.bacnet import Bacnet
from pipeline.protocols.dnp3 import Dnp3
from pipeline.protocols.enip import Cip, Enip
from pipeline.protocols.generic import MAX_FIELDS, MAX_VALUE, Tshark
from pipeline.protocols.iec104 import Iec104
from pipeline.protocols.mqtt import Mqtt
from pipeline.protocols.opcua import Opcua
from pipeline.protocols.s7comm import S7comm
from pipeline.schema import Endpoint, Event, EventInfo, Evidence, Modbus, Observer, Organization
from pipeline.schema import ts as to_datetime

from .decoders.bacnet import constants as bac
from .decoders.base import Conn, DecoderSpec, Direction, FrameMeta, event_id, make_event
from .decoders.dnp3 import constants as dnp
from .decoders.enip import constants as en
from .decoders.iec104 import constants as iec
from .decoders.modbus import constants as mb
from .decoders.mqtt import constants as mq
from .decoders.opcua import constants as ua
from .decoders.s7comm import constants as s7
from .engine import DecodeReport, Sensor
from .exceptions import TsharkError
from .flows import icmp_ports
from .packet import PROTO_ICMP, PROTO_ICMP6, PROTO_SCTP, PROTO_TCP, PROTO_UDP, mac_str, parse
from .pcapfile import CaptureReader, ProgressHook

KIND = "ts"  # event_id kind: tshark events never collide with the native engine's ids

# Layers that carry others: their fields are the envelope (taken from the native reader) or folded into a struct.
CARRIERS = frozenset({
    "frame", "eth", "ethertype", "vlan", "sll", "null", "loop", "raw", "ip", "ipv6", "tcp", "udp", "sctp",
    "data", "tpkt", "_ws.malformed", "_ws.expert", "_ws.short", "_ws.unreassembled", "ipv6.hopopts", "fake-field-wrapper",
})  # fmt: skip
# tshark layer -> our dataset, for the protocols the schema has a struct for.
GROUPS: dict[str, str] = {
    "mbtcp": "modbus", "modbus": "modbus", "dnp3": "dnp3", "s7comm": "s7comm", "s7comm_plus": "s7comm", "cotp": "s7comm",
    "iec60870_104": "iec104", "iec60870_asdu": "iec104", "enip": "enip", "cip": "enip", "cipcm": "enip", "cipcls": "enip",
    "cipmb": "enip", "cipio": "enip", "opcua": "opcua", "bvlc": "bacnet", "bacnet": "bacnet", "bacapp": "bacnet", "mqtt": "mqtt",
}  # fmt: skip
DATASET_LAYERS: dict[str, tuple[str, ...]] = {}
for _layer, _ds in GROUPS.items():
    DATASET_LAYERS.setdefault(_ds, ())
    DATASET_LAYERS[_ds] += (_layer,)
COTP_CONNECTION = frozenset({0x0E, 0x0D, 0x08, 0x0C, 0x07, 0x05, 0x06})  # CR CC DR DC ER RJ AK... (not DT 0x0F)

_decode_packet = msgspec.json.Decoder()
_NO_CONN = Conn("", 0, "", 0, "", "")  # non-IP frames: event_id needs a FrameMeta, the ids need no connection


def tshark_path() -> str:
    """The tshark binary (pyshark's lookup, which honours its config file; else PATH)."""
    try:
        from pyshark.tshark.tshark import get_process_path

        return str(get_process_path())
    except Exception:
        found = shutil.which("tshark")
        if found:
            return found
    raise TsharkError("tshark not found", "Install it (`apt-get install tshark`) or use `--engine native`")


# ---------------------------------------------------------------- tshark output


def _protocols_present(tshark: str, path: str) -> list[str]:
    """Every layer name in any frame's `frame.protocols` (a cheap `-T fields` pass)."""
    proc = subprocess.run([tshark, "-n", "-r", path, "-T", "fields", "-e", "frame.protocols"], capture_output=True, check=False)
    names: set[str] = set()
    for line in set(proc.stdout.splitlines()):
        names.update(line.decode("ascii", "replace").split(":"))
    names.discard("")
    return sorted(names)


def _packets(proc: subprocess.Popen[bytes]) -> Iterator[dict[str, Any]]:
    """The layers of each packet of `tshark -T json`: top-level objects start at "  {" and end at "  }"."""
    assert proc.stdout is not None
    buf: list[bytes] = []
    inside = False
    for line in proc.stdout:
        if not inside:
            if line.startswith(b"  {"):
                inside = True
                buf = [line]
            continue
        buf.append(line)
        if line.startswith(b"  }"):
            inside = False
            obj = _decode_packet.decode(b"".join(buf).rstrip().rstrip(b","))
            yield obj.get("_source", {}).get("layers", {})


def _occurrences(layers: dict[str, Any], name: str) -> list[dict[str, Any]]:
    v = layers.get(name)
    if v is None:
        return []
    if isinstance(v, list):
        return [x for x in v if isinstance(x, dict)]
    return [v] if isinstance(v, dict) else []


def _flat(d: Any, out: dict[str, list[str]]) -> dict[str, list[str]]:
    """Every leaf field (a key with a dot, i.e. a display-filter name) of a layer, values in order."""
    if isinstance(d, dict):
        for k, v in d.items():
            if isinstance(v, dict):
                _flat(v, out)
            elif isinstance(v, list):
                if k.find(".") > 0 and all(not isinstance(x, (dict, list)) for x in v):
                    out.setdefault(k, []).extend(str(x) for x in v)
                else:
                    for x in v:
                        _flat(x, out) if isinstance(x, (dict, list)) else None
            elif k.find(".") > 0 and not k.startswith("_ws"):
                out.setdefault(k, []).append(str(v))
    return out


def _int(values: list[str] | None, i: int = 0) -> int | None:
    if not values or i >= len(values):
        return None
    v = values[i]
    try:
        return int(v, 0) if v[:2].lower() == "0x" else int(v)
    except ValueError:
        return None


def _str(values: list[str] | None, i: int = 0) -> str | None:
    return values[i] if values and i < len(values) else None


# ---------------------------------------------------------------- mapping into the schema structs

Mapped = list[tuple[str, str | None, dict[str, Any]]]  # (dataset, message_type hint, protocol keyword -> struct)


def _modbus(layers: dict[str, Any]) -> Mapped:
    heads = _occurrences(layers, "mbtcp")
    bodies = _occurrences(layers, "modbus")
    out: Mapped = []
    for i, head in enumerate(heads):
        h = _flat(head, {})
        b = _flat(bodies[i], {}) if i < len(bodies) else {}
        fc = _int(b.get("modbus.func_code"))
        if fc is None:
            continue
        exc = _int(b.get("modbus.exception_code"))
        fc &= 0x7F
        out.append(("modbus", None, {"modbus": dict(
            transaction_id=_int(h.get("mbtcp.trans_id")) or 0, unit_id=_int(h.get("mbtcp.unit_id")) or 0,
            protocol_id=_int(h.get("mbtcp.prot_id")), length=_int(h.get("mbtcp.len")),
            function_code=fc, function_name=mb.function_name(fc),
            exception_code=exc, exception_name=mb.exception_name(exc) if exc is not None else None)}))
    return out


def _dnp3(layers: dict[str, Any]) -> Mapped:
    out: Mapped = []
    for layer in _occurrences(layers, "dnp3"):
        f = _flat(layer, {})
        func = _int(f.get("dnp3.al.func"))
        if func is None and "dnp3.tr.ctl" in f:
            continue  # a transport segment of a fragment completed in a later frame
        src, dst = _int(f.get("dnp3.src")), _int(f.get("dnp3.dst"))
        if src is None or dst is None:
            continue
        mt = "link" if func is None else ("unsolicited_response" if func == dnp.FC_UNSOLICITED else "response" if func in dnp.RESPONSES else "request")
        out.append(("dnp3", None, {"dnp3": Dnp3(
            source=src, destination=dst, function_code=func, function_name=dnp.FUNCTION_NAMES.get(func) if func is not None else None,
            message_type=mt, sequence=_int(f.get("dnp3.al.seq")) if func is not None else None)}))
    return out


def _s7comm(layers: dict[str, Any]) -> Mapped:
    out: Mapped = []
    s7layers = _occurrences(layers, "s7comm")
    for layer in s7layers:
        f = _flat(layer, {})
        rosctr = _int(f.get("s7comm.header.rosctr"))
        func = _int(f.get("s7comm.param.func"))
        group = _int(f.get("s7comm.param.userdata.funcgroup"))
        sub = _int(f.get("s7comm.param.userdata.subfunc"))
        out.append(("s7comm", None, {"s7comm": S7comm(
            protocol="s7comm", rosctr=rosctr, rosctr_name=s7.name_of(s7.ROSCTR_NAMES, rosctr),
            pdu_reference=_int(f.get("s7comm.header.pduref")),
            function_code=func, function_name=s7.name_of(s7.FUNCTION_NAMES, func),
            function_group=group, function_group_name=s7.name_of(s7.FUNCTION_GROUPS, group),
            subfunction_code=sub, subfunction_name=s7.name_of(s7.SUBFUNCTIONS.get(group or -1, {}), sub))}))
    for layer in _occurrences(layers, "s7comm_plus"):
        f = _flat(layer, {})
        op = _int(f.get("s7comm_plus.data.opcode"))
        out.append(("s7comm", None, {"s7comm": S7comm(protocol="s7comm-plus", opcode=op, version=_int(f.get("s7comm_plus.header.protocolid")))}))
    if not s7layers and "s7comm_plus" not in layers:
        for layer in _occurrences(layers, "cotp"):
            f = _flat(layer, {})
            code = _int(f.get("cotp.type"))
            if code in COTP_CONNECTION:
                out.append(("s7comm", None, {"s7comm": S7comm(
                    protocol="cotp", cotp_pdu_code=code, cotp_pdu_name=s7.name_of(s7.COTP_TYPES, code),
                    src_ref=_int(f.get("cotp.srcref")), dst_ref=_int(f.get("cotp.dstref")))}))
    return out


def _iec104(layers: dict[str, Any]) -> Mapped:
    apcis: list[tuple[int | None, int | None, dict[str, list[str]]]] = []
    for layer in _occurrences(layers, "iec60870_104"):
        f = _flat(layer, {})
        types = f.get("iec60870_104.type") or []
        for i in range(len(types)):
            apcis.append((_int(types, i), _int(f.get("iec60870_104.utype"), 0) if _int(types, i) == 3 else None, f))
    asdus = [_flat(a, {}) for a in _occurrences(layers, "iec60870_asdu")]
    out: Mapped = []
    ai = 0
    for t, utype, _f in apcis:
        apci = {0: "I", 1: "S", 3: "U"}.get(t if t is not None else -1, "I")
        kw: dict[str, Any] = {"apci_type": apci}
        if apci == "U" and utype is not None:
            code = utype << 2 | 0x03  # tshark gives the function bits; ours is the whole first control octet
            kw.update(u_function_code=code, u_function_name=iec.U_FUNCTIONS.get(code))
        if apci == "I" and ai < len(asdus):
            a = asdus[ai]
            ai += 1
            tid, cot = _int(a.get("iec60870_asdu.typeid")), _int(a.get("iec60870_asdu.causetx"))
            kw.update(type_id=tid, type_name=iec.TYPE_NAMES.get(tid, f"unknown_{tid}") if tid is not None else None,
                      cot=cot, cot_name=iec.COT_NAMES.get(cot) if cot is not None else None,
                      common_address=_int(a.get("iec60870_asdu.addr")))
        out.append(("iec104", None, {"iec104": Iec104(**kw)}))
    return out


def _enip(layers: dict[str, Any]) -> Mapped:
    out: Mapped = []
    heads = _occurrences(layers, "enip")
    cip: dict[str, list[str]] = {}
    for name in ("cip", "cipcm", "cipcls", "cipmb"):
        for layer in _occurrences(layers, name):
            _flat(layer, cip)
    if "cipio" in layers and not any("enip.command" in _flat(h, {}) for h in heads):
        return [("cip_io", None, {"enip": Enip()})]
    for n, head in enumerate(heads):
        h = _flat(head, {})
        cmd = _int(h.get("enip.command"))
        status = _int(h.get("enip.status"))
        enip = Enip(command_code=cmd, command_name=en.command_name(cmd) if cmd is not None else None,
                    session_handle=_int(h.get("enip.session")), status_code=status,
                    status_name=en.encap_status_name(status) if status is not None else None)
        services = cip.get("cip.sc", []) if n == 0 else []
        if not services:
            out.append(("enip", None, {"enip": enip}))
        for i in range(len(services)):
            sc = _int(services, i)
            if sc is None:
                continue
            resp = _int(cip.get("cip.rr"), i) == 1
            out.append(("enip", "response" if resp else "request", {"enip": enip, "cip": Cip(
                service_code=sc, service_name=en.service_name(sc, None, False), message_type="response" if resp else "request")}))
    return out


def _opcua(layers: dict[str, Any]) -> Mapped:
    out: Mapped = []
    for layer in _occurrences(layers, "opcua"):
        f = _flat(layer, {})
        mt = _str(f.get("opcua.transport.type"))
        if mt is None:
            continue
        sid = _int(f.get("opcua.servicenodeid.numeric"))
        name, svc, resp = ua.service_of(sid)
        out.append(("opcua", None, {"opcua": Opcua(
            message_type=mt[:3], chunk_type=_str(f.get("opcua.transport.chunk")), service_type_id=sid, service_name=name,
            service=svc, is_response=resp, secure_channel_id=_int(f.get("opcua.transport.scid")))}))
    return out


def _bacnet(layers: dict[str, Any]) -> Mapped:
    out: Mapped = []
    heads = _occurrences(layers, "bvlc")
    npdus = _occurrences(layers, "bacnet")
    apdus = _occurrences(layers, "bacapp")
    for i, head in enumerate(heads or npdus[:1]):
        h = _flat(head, {}) if heads else {}
        n = _flat(npdus[i], {}) if i < len(npdus) else {}
        a = _flat(apdus[i], {}) if i < len(apdus) else {}
        fn = _int(h.get("bvlc.function"))
        apdu = _int(a.get("bacapp.type"))
        conf = _int(a.get("bacapp.confirmed_service"))
        unconf = _int(a.get("bacapp.unconfirmed_service"))
        svc = unconf if apdu == 1 else conf
        table = bac.UNCONFIRMED_SERVICES if apdu == 1 else bac.CONFIRMED_SERVICES
        msg = _int(n.get("bacnet.mesgtyp"))
        out.append(("bacnet", None, {"bacnet": Bacnet(
            bvlc_function=fn if fn is not None else -1, bvlc_function_name=bac.BVLC_FUNCTIONS.get(fn) if fn is not None else None,
            network_message_type=msg, network_message_name=bac.NETWORK_MESSAGES.get(msg) if msg is not None else None,
            apdu_type=apdu, apdu_type_name=bac.APDU_TYPES.get(apdu) if apdu is not None else None,
            invoke_id=_int(a.get("bacapp.invoke_id")), service=svc, service_name=table.get(svc) if svc is not None else None)}))
    return out


def _mqtt(layers: dict[str, Any]) -> Mapped:
    out: Mapped = []
    for layer in _occurrences(layers, "mqtt"):
        f = _flat(layer, {})
        types = f.get("mqtt.msgtype") or []
        for i in range(len(types)):
            t = _int(types, i)
            if t is None:
                continue
            out.append(("mqtt", None, {"mqtt": Mqtt(message_type=t, message_type_name=mq.TYPE_NAMES.get(t, f"unknown_{t}"))}))
    return out


MAPPERS: dict[str, Callable[[dict[str, Any]], Mapped]] = {
    "modbus": _modbus, "dnp3": _dnp3, "s7comm": _s7comm, "iec104": _iec104, "enip": _enip,
    "opcua": _opcua, "bacnet": _bacnet, "mqtt": _mqtt,
}  # fmt: skip


def _generic(name: str, layer: dict[str, Any]) -> Tshark:
    f = _flat(layer, {})
    fields = {k: ",".join(v)[:MAX_VALUE] for k, v in list(f.items())[:MAX_FIELDS]}
    return Tshark(protocol=name, fields=fields, fields_truncated=True if len(f) > MAX_FIELDS else None)


def map_layers(layers: dict[str, Any], wanted: frozenset[str] | None = None) -> Mapped:
    """Every event body of one packet's tshark layers, in layer order (pure: no envelope)."""
    out: Mapped = []
    done: set[str] = set()
    for name in layers:
        if name in CARRIERS:
            continue
        ds = GROUPS.get(name)
        if ds is not None:
            if ds in done or (wanted is not None and ds not in wanted):
                continue
            done.add(ds)
            out.extend(MAPPERS[ds](layers))
            continue
        if wanted is not None and name not in wanted:
            continue
        for layer in _occurrences(layers, name):
            out.append((name, None, {"tshark": _generic(name, layer)}))
    return out


# ---------------------------------------------------------------- the engine


class _NoDecoder:
    """Stands in for a native decoder: flows get the protocol's ports and name, nothing is decoded."""

    def feed(self, data: memoryview, direction: Direction, meta: FrameMeta) -> list[Event]:
        return []

    def close(self, meta: FrameMeta | None) -> list[Event]:
        return []


def _flow_registry() -> dict[str, DecoderSpec]:
    from .decoders import REGISTRY

    # Layer-2 decoders (GOOSE, PROFINET DCP) have no IP flow to name: tshark decodes those frames itself.
    return {k: DecoderSpec(s.name, s.default_ports, s.transport, _NoDecoder) for k, s in REGISTRY.items() if s.transport != "ethernet"}


def decode_file_tshark(
    path: str | os.PathLike[str],
    *,
    organization_id: str | None = None,
    observer_id: str | None = None,
    protocols: Sequence[str] | None = None,
    report: DecodeReport | MutableMapping[str, Any] | None = None,
    on_progress: ProgressHook | None = None,
    flows: bool = True,
) -> Iterator[Event]:
    """Every event tshark's dissection of a capture gives, in frame order, plus the native flow records.

    `protocols` limits the output to these datasets / tshark layer names (`modbus`, `goose`, ...).
    Opens the file immediately, so a missing or non-capture file raises CaptureFileError here
    (the native reader's check), and a missing tshark raises TsharkError.
    """
    reader = CaptureReader(path, on_progress=on_progress)
    tshark = tshark_path()
    rep = report if isinstance(report, DecodeReport) else DecodeReport()
    rep.file, rep.sha256, rep.format = reader.name, reader.sha256, reader.format
    sensor = Sensor(organization_id, observer_id, _flow_registry(), file_sha256=reader.sha256, file=reader.name, report=rep)
    return _run(tshark, reader, sensor, rep, frozenset(protocols) if protocols else None, flows,
                report if isinstance(report, MutableMapping) else None)


def _run(tshark: str, reader: CaptureReader, sensor: Sensor, rep: DecodeReport, wanted: frozenset[str] | None,
         flows: bool, out_report: MutableMapping[str, Any] | None) -> Iterator[Event]:
    started = time.perf_counter()
    if wanted is None:
        layers = [p for p in _protocols_present(tshark, reader.path) if p not in CARRIERS]
    else:
        layers = sorted({lay for w in wanted for lay in DATASET_LAYERS.get(w, (w,))})
    cmd = [tshark, "-n", "-r", reader.path, "-T", "json", "--no-duplicate-keys", "-J", " ".join(["frame", *layers])]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=1 << 20)
    frames = iter(reader)
    native_frame = 0
    counts = rep.events
    try:
        with reader:
            for pkt_layers in _packets(proc):
                frame = _int(_flat(pkt_layers.get("frame", {}), {}).get("frame.number"))
                if frame is None:
                    continue
                record = None
                while native_frame < frame:
                    try:
                        record = next(frames)
                    except StopIteration:
                        record = None
                        break
                    native_frame = record[0]
                    ended = sensor.process(*record)
                    if flows and ended:
                        yield from ended
                if record is None or record[0] != frame:
                    break  # the native reader stopped (truncated capture): tshark's later frames have no envelope
                bodies = map_layers(pkt_layers, wanted)
                if not bodies:
                    continue
                for seq, ev in enumerate(_events(sensor, record, bodies)):
                    counts[ev.event.dataset] += 1
                    yield ev
            for record in frames:
                ended = sensor.process(*record)
                if flows and ended:
                    yield from ended
            last = sensor.finish()
            if flows:
                yield from last
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate()
        if proc.returncode not in (0, None, -9) and not reader.truncated:
            msg = err.decode("utf-8", "replace").strip().splitlines()
            rep.warnings.append(f"{reader.path}: tshark exited with status {proc.returncode}: {' '.join(msg[-2:])}")
        rep.warnings.extend(w for w in reader.warnings if w not in rep.warnings)
        rep.truncated = reader.truncated
        rep.elapsed = time.perf_counter() - started
        if out_report is not None:
            out_report.update(rep.to_dict())


def _events(sensor: Sensor, record: tuple[int, float, int, bytes], bodies: Mapped) -> Iterator[Event]:
    frame, stamp, linktype, data = record
    p = parse(linktype, data)
    flow = None
    if p is not None:
        proto = p.proto
        if proto in (PROTO_TCP, PROTO_UDP, PROTO_SCTP):
            key = (p.src, p.dst, proto, p.sport, p.dport)
        elif proto in (PROTO_ICMP, PROTO_ICMP6):
            s, d, _ = icmp_ports(proto, p.sport, p.dport)
            key = (p.src, p.dst, proto, s, d)
        else:
            key = (p.src, p.dst, proto, 0, 0)
        flow = sensor.flows.get(key)
    if flow is not None:
        is_orig = key == flow.key
        direction = Direction.TO_SERVER if is_orig != flow.dec_swapped else Direction.TO_CLIENT
        meta = FrameMeta(frame=frame, time=to_datetime(stamp), conn=flow.dec_conn, file_sha256=sensor.file_sha256,
                         file=sensor.file, observer_id=sensor.observer_id, organization_id=sensor.organization_id)
        for seq, (dataset, _hint, proto_kw) in enumerate(bodies):
            ev = make_event(meta, direction, dataset=dataset, seq=seq, **_structs(proto_kw, direction))
            yield msgspec.structs.replace(ev, event=msgspec.structs.replace(ev.event, id=event_id(meta, seq, kind=KIND)))
        return
    # Not IP (GOOSE, PROFINET RT, LLDP, ...): the link-layer addresses are the envelope.
    src_mac = dst_mac = None
    if linktype == 1 and len(data) >= 14:
        dst_mac, src_mac = mac_str(data[0:6]), mac_str(data[6:12])
    when = to_datetime(stamp)
    meta = FrameMeta(frame=frame, time=when, conn=_NO_CONN, file_sha256=sensor.file_sha256, file=sensor.file,
                     observer_id=sensor.observer_id, organization_id=sensor.organization_id)
    for seq, (dataset, _hint, proto_kw) in enumerate(bodies):
        yield Event(
            timestamp=when,
            event=EventInfo(kind="event", dataset=dataset, id=event_id(meta, seq, kind=KIND)),
            source=Endpoint(mac=src_mac) if src_mac else None,
            destination=Endpoint(mac=dst_mac) if dst_mac else None,
            observer=Observer(id=sensor.observer_id) if sensor.observer_id else None,
            organization=Organization(id=sensor.organization_id) if sensor.organization_id else None,
            evidence=Evidence(file_sha256=sensor.file_sha256, file=sensor.file, frame=frame),
            **_structs(proto_kw, Direction.TO_SERVER),
        )


def _structs(kw: dict[str, Any], direction: Direction) -> dict[str, Any]:
    """Modbus needs the direction for its required message_type (the PDU does not say)."""
    if "modbus" in kw and isinstance(kw["modbus"], dict):
        mt = "request" if direction is Direction.TO_SERVER else "response"
        return {**kw, "modbus": Modbus(message_type=mt, **kw["modbus"])}
    return kw
