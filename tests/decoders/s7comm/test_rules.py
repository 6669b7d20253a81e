"""The S7comm rule pack on corpus captures (and one built here): each rule fires on its dangerous
message and not on the benign traffic of the same capture."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from detection.engine import DetectionEngine
from detection.rules import RuleSet, load_rules
from pipeline.schema import Event

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def s7_pack() -> RuleSet:
    return load_rules(REPO / "rules" / "s7comm")


def _alerts(pack: RuleSet, events: list[Event]) -> list[Event]:
    engine = DetectionEngine(pack, organization_id="test")
    return engine.process_many(events) + engine.finish()


def _fired(alerts: list[Event], rule_id: str) -> list[Event]:
    return [a for a in alerts if a.rule is not None and a.rule.id == rule_id]


def _frames(events: list[Event], pred: Callable[[Event], bool]) -> set[int]:
    return {e.evidence.frame for e in events if e.evidence is not None and e.evidence.frame is not None and pred(e)}


def _alert_frames(alerts: list[Event]) -> set[int]:
    return {f for a in alerts if a.evidence is not None for f in (a.evidence.frames or [])}


def _is(fc: int, rosctr: int = 1) -> Callable[[Event], bool]:
    return lambda e: e.s7comm is not None and e.s7comm.rosctr == rosctr and e.s7comm.function_code == fc and e.anomaly is None


@pytest.mark.parametrize(
    ("rule_id", "trace", "dangerous"),
    [
        ("qn-s7comm-0001", "gymgit-s7-pcaps/snap7_s300_stop.pcapng", _is(0x29)),
        ("qn-s7comm-0001", "gymgit-s7-pcaps/step7_s300_stop.pcapng", _is(0x29)),
        ("qn-s7comm-0002", "gymgit-s7-pcaps/step7_s300_download.pcapng", _is(0x1A)),
        ("qn-s7comm-0002", "gymgit-s7-pcaps/tia_s300_downloadOb1.pcapng", _is(0x1A)),
        ("qn-s7comm-0003", "icsnpp-s7comm/traces/snap7.pcap", _is(0x1D)),
        ("qn-s7comm-0004", "icsnpp-s7comm/traces/snap7.pcap", lambda e: _is(0x28)(e) and e.s7comm is not None and e.s7comm.pi_service == "P_PROGRAM"),
        ("qn-s7comm-0005", "gymgit-s7-pcaps/tia_s300_downloadHwConfig.pcapng", lambda e: _is(0x28)(e) and e.s7comm is not None and e.s7comm.pi_service == "_DELE"),
        ("qn-s7comm-0006", "icsnpp-s7comm/traces/s7comm_plus.pcap", _is(0x05)),
        ("qn-s7comm-0008", "icsnpp-s7comm/traces/s7ident.pcap", lambda e: e.event.action == "identify" and e.s7comm is not None and e.s7comm.userdata_type == "request"),
        ("qn-s7comm-0009", "icsnpp-s7comm/traces/s7comm_plus.pcap", lambda e: e.s7comm is not None and e.s7comm.opcode == 0x31),
    ],
)
def test_rule_fires_on_dangerous_message_only(s7_pack: RuleSet, decoded: Callable[[str], list[Event]], rule_id: str, trace: str, dangerous: Callable[[Event], bool]) -> None:
    events = decoded(trace)
    mine = _fired(_alerts(s7_pack, events), rule_id)
    assert mine, f"{rule_id} did not fire on {trace}"
    want = _frames(events, dangerous)
    got = _alert_frames(mine)
    assert got and got <= want, f"{rule_id} on {trace}: alert frames {sorted(got)} outside the dangerous frames {sorted(want)}"
    benign = _frames(events, lambda e: not dangerous(e)) - want
    assert not got & benign


def test_stop_capture_yields_a_mode_change(decoded: Callable[[str], list[Event]]) -> None:
    events = [e for e in decoded("gymgit-s7-pcaps/snap7_s300_stop.pcapng") if e.event.dataset == "s7comm"]
    assert [e.event.action for e in events] == ["mode_change", "mode_change"]
    assert events[0].s7comm is not None and events[0].s7comm.function_name == "plc_stop"


def test_no_alert_on_read_only_traffic(s7_pack: RuleSet, decoded: Callable[[str], list[Event]]) -> None:
    # An HMI polling (read var only) and a successful password: no rule may fire.
    for trace in ("iti-ics-security-tools/s7/S7Comm/s7comm_clean.pcap", "gymgit-s7-pcaps/step7_s300_AuthPassword.pcapng"):
        alerts = [a for a in _alerts(s7_pack, decoded(trace)) if a.rule is not None and a.rule.id != "qn-s7comm-0008"]
        assert alerts == [], (trace, [a.message for a in alerts])


# ---------------------------------------------------------------- password guessing (built capture)

_PW_REQ = bytes.fromhex("320700000500000800080001120411450100ff090008213a1b1d6e681b1d")  # security / PLC password
_PW_BAD = bytes.fromhex("320700000500000c000400011208128501010000d6020a000000")  # ... error 0xd602
_PW_OK = bytes.fromhex("320700000500000c00040001120812850101000000000a000000")


def _tpkt(s7: bytes) -> bytes:
    return bytes([3, 0]) + (len(s7) + 7).to_bytes(2, "big") + bytes([2, 0xF0, 0x80]) + s7


def _capture(path: Path, exchanges: list[tuple[bytes, bytes]]) -> Path:
    scapy = pytest.importorskip("scapy.all")
    c, s = ("10.10.1.66", 50000), ("10.10.1.101", 102)
    pkts = []
    cseq, sseq = 1000, 5000
    t = 1_700_000_000.0

    def seg(src: tuple[str, int], dst: tuple[str, int], flags: str, seq: int, ack: int, load: bytes = b"") -> None:
        nonlocal t
        p = scapy.Ether() / scapy.IP(src=src[0], dst=dst[0]) / scapy.TCP(sport=src[1], dport=dst[1], flags=flags, seq=seq, ack=ack) / load
        p.time = t
        t += 0.01
        pkts.append(p)

    seg(c, s, "S", cseq, 0)
    seg(s, c, "SA", sseq, cseq + 1)
    cseq, sseq = cseq + 1, sseq + 1
    seg(c, s, "A", cseq, sseq)
    for req, resp in exchanges:
        seg(c, s, "PA", cseq, sseq, _tpkt(req))
        cseq += len(_tpkt(req))
        seg(s, c, "PA", sseq, cseq, _tpkt(resp))
        sseq += len(_tpkt(resp))
    scapy.wrpcap(str(path), pkts)
    return path


def test_password_guessing(s7_pack: RuleSet, tmp_path: Path) -> None:
    from sensors.engine import decode_file

    guessing = list(decode_file(_capture(tmp_path / "guess.pcap", [(_PW_REQ, _PW_BAD)] * 7 + [(_PW_REQ, _PW_OK)])))
    failures = [e for e in guessing if e.s7comm is not None and e.s7comm.userdata_type == "response" and e.event.outcome == "failure"]
    assert len(failures) == 7 and failures[0].s7comm is not None and failures[0].s7comm.userdata_error_name == "password_incorrect"
    assert len(_fired(_alerts(s7_pack, guessing), "qn-s7comm-0007")) == 1
    typo = list(decode_file(_capture(tmp_path / "typo.pcap", [(_PW_REQ, _PW_BAD), (_PW_REQ, _PW_OK)])))
    assert _fired(_alerts(s7_pack, typo), "qn-s7comm-0007") == []
