"""--engine tshark: agreement with the native decoders on identifying fields, generic protocols, schema, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml

from pipeline.schema import json_schema, to_dict
from sensors.exceptions import CaptureFileError
from sensors.tshark_engine import decode_file_tshark
from tests.tshark_engine.agree import compare

pytestmark = [pytest.mark.tshark, pytest.mark.skipif(shutil.which("tshark") is None, reason="needs tshark")]

CORPUS = Path("/work/shared/corpus")
EXPECTED = Path(__file__).parent / "expected_differences.yml"
TRACES = [
    ("modbus", "icsnpp-modbus/traces/modbus_example.pcap"),
    ("dnp3", "icsnpp-dnp3/traces/dnp3_example.pcap"),
    ("s7comm", "icsnpp-s7comm/traces/snap7.pcap"),
    ("s7comm", "icsnpp-s7comm/traces/s7comm_plus.pcap"),
    ("iec104", "zeek-iec104/traces/iec104.pcap"),
    ("enip", "icsnpp-enip/traces/enip_cip_example.pcap"),
    ("opcua", "icsnpp-opcua-binary/traces/open62541_client-server_mainloop.pcap"),
    ("bacnet", "icsnpp-bacnet/traces/bacnet_example.pcap"),
    ("mqtt", "zeek/traces/mqtt.pcap"),
]


def _accepted(name: str, side: str, frame: int, key: tuple) -> bool:  # type: ignore[type-arg]
    for entry in yaml.safe_load(EXPECTED.read_text()):
        assert entry.get("why")
        if entry["file"] != name or entry["side"] != side:
            continue
        if entry.get("protocol") == "s7comm-plus" and key[2][0] != "s7comm-plus":
            continue
        if entry["frames"] == "all" or frame in entry["frames"]:
            return True
    return False


def test_engines_agree_on_identifying_fields() -> None:
    rows, total_both, total_diff, unexplained = [], 0, 0, []
    for ds, name in TRACES:
        path = CORPUS / name
        if not path.is_file():
            continue
        both, nat, tsh = compare(path, {ds})
        accepted = 0
        for side, diff in (("native", nat), ("tshark", tsh)):
            for key, n in diff.items():
                if _accepted(name, side, key[0], key):
                    accepted += n
                else:
                    unexplained.append(f"{name} {side} only: {key} x{n}")
        b, d = sum(both.values()), sum(nat.values()) + sum(tsh.values())
        total_both += b
        total_diff += d - accepted
        rows.append(f"{ds:7} {name:66} agree {b:5}  native-only {sum(nat.values()):4}  tshark-only {sum(tsh.values()):4}  accepted {accepted:4}")
    print("\n".join(["", "protocol trace" + " " * 60 + "per-frame identifying fields", *rows]))
    assert total_both and total_both / (total_both + total_diff) >= 0.99
    assert not unexplained, "\n".join(unexplained)


@pytest.mark.parametrize(("name", "protocols"), [
    ("icsnpp-iec61850-goose/traces/GOOSE.pcap", {"goose"}),
    ("iti-ics-security-tools/IEC61850/MMS_-_Specific_Commands/iec61850_write.pcap", {"mms", "pres", "ses"}),
    ("icsnpp-profinet-io-cm/traces/profinet_io_cm_mixed_1.pcap", {"pn_io", "pn_dcp", "pn_ptcp"}),
    ("icsnpp-profinet-io-cm/traces/profinet_io_cm_read.pcapng", {"dcerpc", "pn_io_device"}),
    ("icsnpp-omron-fins/traces/omron.pcap", {"omron"}),
])  # fmt: skip
def test_generic_protocols(name: str, protocols: set[str]) -> None:
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"{path} absent")
    validator = jsonschema.Draft202012Validator(json_schema())  # built once: validate() re-checks the schema per call
    seen = set()
    for e in decode_file_tshark(path):
        if e.tshark is not None:
            assert e.event.dataset == e.tshark.protocol
            assert e.evidence is not None and e.evidence.frame and e.evidence.file_sha256
            assert e.event.id and "-ts" in e.event.id
            seen.add(e.tshark.protocol)
        validator.validate(to_dict(e))
    assert protocols <= seen, seen


def test_mapped_events_validate() -> None:
    validator = jsonschema.Draft202012Validator(json_schema())  # built once: validate() re-checks the schema per call
    n = 0
    for ds, name in TRACES[:3] + TRACES[4:]:
        for e in decode_file_tshark(CORPUS / name, protocols=[ds]):
            validator.validate(to_dict(e))
            n += 1
    assert n


def test_truncated_capture_is_reported(tmp_path: Path) -> None:
    data = (CORPUS / "icsnpp-modbus/traces/modbus_example.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 30])
    from sensors.engine import DecodeReport

    rep = DecodeReport()
    events = list(decode_file_tshark(cut, report=rep))
    assert rep.truncated and any("truncated" in w for w in rep.warnings)
    assert any(e.event.dataset == "modbus" for e in events)


def test_non_capture_raises_like_native(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("not a capture\n")
    with pytest.raises(CaptureFileError, match="not a pcap or pcapng"):
        decode_file_tshark(bad)
