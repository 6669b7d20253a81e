"""Our MMS decoder vs tshark on the libiec61850 testbed capture (pcaps/mms/mms_plant_attack.pcap, recorded
by `python -m tests.testbed run mms_plant_attack` from real IedServer / IedConnection stacks).

Per frame: the MMS PDU types, confirmed/unconfirmed service codes, invoke ids, domain-specific object
names and the identify answer must be the same as tshark's (the views of test_mms_conformance).  Unlike
the corpus traces, no accepted difference is listed for this capture: every frame must agree.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.schema import Event
from sensors.engine import decode_file
from tests.testbed.runner import load_scenario
from tests.testbed.stacks.mms import DOMAIN, identity

from .test_mms_conformance import our_view, tshark_view

CAPTURE = Path(__file__).resolve().parents[3] / "pcaps" / "mms" / "mms_plant_attack.pcap"


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return list(decode_file(CAPTURE))


@pytest.mark.tshark
def test_every_frame_agrees_with_tshark(events: list[Event], tshark: str) -> None:
    tp, td = tshark_view(tshark, CAPTURE)
    op, od = our_view(events)
    assert len(tp) > 200, f"tshark sees only {len(tp)} MMS frames in {CAPTURE.name}"
    problems = []
    for f in sorted(set(tp) | set(op)):
        if sorted(tp.get(f, [])) != sorted(op.get(f, [])):
            problems.append(f"frame {f}: PDU types tshark {tp.get(f)} ours {op.get(f)}")
            continue
        mine = dict(od[f])
        answer_names = mine.pop("answer_names")
        if td[f]["names"] and not mine["names"]:  # names an answer carries itself
            mine["names"] = answer_names
        if td[f] != mine:
            problems.append(f"frame {f}: tshark {td[f]} ours {mine}")
    assert not problems, "\n".join(problems[:30])


def test_libiec61850_services_are_decoded(events: list[Event]) -> None:
    """Each client action of the scenario shows up with its service, and the attacker's requests carry
    the names the stack used (tests/testbed/stacks/mms.py)."""
    reqs = [e for e in events if e.mms is not None and e.anomaly is None and e.mms.pdu_type == "confirmed-RequestPDU"]
    services = {e.mms.service for e in reqs}  # type: ignore[union-attr]
    assert {"identify", "getNameList", "read", "write", "getVariableAccessAttributes", "fileDirectory", "fileOpen", "fileClose", "fileDelete"} <= services
    atk = [e for e in reqs if e.source.ip == "10.10.1.66"]  # type: ignore[union-attr]
    writes = {(e.mms.domain_id, e.mms.item_id) for e in atk if e.mms.service == "write"}  # type: ignore[union-attr]
    assert writes == {(DOMAIN, "PTOC1$SP$StrVal$setMag$f"), (DOMAIN, "XCBR1$CO$Pos$Oper")}
    deleted = [e.mms.file_name for e in atk if e.mms.service == "fileDelete"]  # type: ignore[union-attr]
    assert deleted == ["COMTRADE/fault_0001.cfg"]
    assert {e.event.action for e in atk if e.mms.service == "fileDelete"} == {"file_delete"}  # type: ignore[union-attr]
    ips = {"plc1": "10.10.1.101", "plc2": "10.10.1.102"}
    want = {(ips[role], *identity(cfg).values()) for role, cfg in load_scenario("mms_plant_attack")["plcs"].items()}
    answers = {(e.source.ip, e.mms.vendor_name, e.mms.model_name, e.mms.revision) for e in events  # type: ignore[union-attr]
               if e.mms is not None and e.mms.service == "identify" and e.mms.pdu_type == "confirmed-ResponsePDU"}
    assert answers == want
