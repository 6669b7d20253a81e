"""MMS connections on TCP 102 are MMS from their COTP set-up to their flow record: no s7comm events, no s7comm assets.

The port-102 flow (TPKT/COTP, shared with S7comm) holds a connection's CR/CC/DR until its first
data PDU shows what it carries. On every MMS capture (the corpus IEC 61850 traces and the MMS
testbed run) this test checks, against tshark's COTP dissection, that each CR/CC of an MMS
connection is an mms event in the frame tshark shows it, that no s7comm event or s7comm-named
flow record belongs to a connection carrying MMS, and that no asset lists s7comm.
"""

from __future__ import annotations

import subprocess
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from detection.assets import AssetTracker
from pipeline.schema import Event

from .conftest import MMS_TRACES

TESTBED = "pcaps/mms/mms_plant_attack.pcap"
CAPTURES = (*MMS_TRACES, TESTBED)
# Sample_File_MMS_and_GOOSE starts mid-session: three port-102 connections show only a TCP
# keep-alive byte or no payload at all, so nothing says what they carry and their flow records
# keep the port's decoder name (s7comm), as every flow record without a recognised payload does.
# The hosts on them are the only ones that still list s7comm, each because of such a connection.
UNIDENTIFIED_HOSTS = {
    "iti-ics-security-tools/IEC61850/Sample_File_MMS_and_GOOSE.pcap": {"172.16.0.101", "172.16.0.121", "172.16.201.6", "172.16.201.8"},
}


def _path(rel: str, corpus: Path, repo_root: Path) -> Path:
    return repo_root / rel if rel == TESTBED else corpus / rel


@pytest.fixture(scope="module")
def events(decoded: Callable[[str], list[Event]], corpus: Path, repo_root: Path) -> Callable[[str], list[Event]]:
    from sensors.engine import decode_file

    cache: dict[str, list[Event]] = {}

    def get(rel: str) -> list[Event]:
        if rel != TESTBED:
            return decoded(rel)
        if rel not in cache:
            path = _path(rel, corpus, repo_root)
            if not path.is_file():
                pytest.skip(f"{path} not present")
            cache[rel] = list(decode_file(path))
        return cache[rel]

    return get


def _by_connection(evs: list[Event]) -> dict[str, list[Event]]:
    conns: dict[str, list[Event]] = defaultdict(list)
    for e in evs:
        if e.network is not None and e.network.community_id:
            conns[e.network.community_id].append(e)
    return conns


@pytest.mark.parametrize("rel", CAPTURES, ids=lambda r: Path(r).stem)
def test_no_s7comm_event_on_an_mms_connection(rel: str, events: Callable[[str], list[Event]]) -> None:
    evs = events(rel)
    mms_conns = 0
    for cid, conn in _by_connection(evs).items():
        if not any(e.event.dataset == "mms" for e in conn):
            # a port-102 connection with nothing recognisable: only its flow record and a cut-PDU note
            assert all(e.event.dataset == "flow" or (e.anomaly is not None and e.anomaly.code == "truncated_pdu") for e in conn if e.network.protocol == "s7comm"), cid
            continue
        mms_conns += 1
        assert [e.event.id for e in conn if e.event.dataset == "s7comm" or e.s7comm is not None] == [], cid
        (flow,) = [e for e in conn if e.event.dataset == "flow"]
        assert flow.network.protocol == "mms"
    assert mms_conns >= 1


def _tshark_cotp(tshark: str, path: Path) -> dict[int, list[int]]:
    """frame -> COTP TPDU codes of its connection PDUs (CR/CC/DR/DC/ER), as tshark dissects them."""
    out = subprocess.run(
        [tshark, "-n", "-r", str(path), "-T", "fields", "-E", "occurrence=a", "-e", "frame.number", "-e", "cotp.type", "-Y", "cotp.type != 0x0f"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    frames: dict[int, list[int]] = {}
    for line in out.splitlines():
        fr, _, codes = line.partition("\t")
        frames[int(fr)] = [int(c, 0) for c in codes.split(",") if c and int(c, 0) != 0x0F]
    return frames


@pytest.mark.parametrize("rel", CAPTURES, ids=lambda r: Path(r).stem)
def test_cotp_set_up_is_mms_where_tshark_shows_it(rel: str, events: Callable[[str], list[Event]], tshark: str, corpus: Path, repo_root: Path) -> None:
    evs = events(rel)
    ours: dict[int, list[int]] = defaultdict(list)
    for e in evs:
        if e.event.dataset == "mms" and e.mms is not None and e.mms.cotp_pdu_code is not None and e.anomaly is None:
            ours[e.evidence.frame].append(e.mms.cotp_pdu_code)
    theirs = _tshark_cotp(tshark, _path(rel, corpus, repo_root))
    # every COTP connection PDU tshark shows is ours, as an mms event, in the same frame
    assert {fr: sorted(c) for fr, c in theirs.items() if c} == {fr: sorted(c) for fr, c in ours.items()}


@pytest.mark.parametrize("rel", CAPTURES, ids=lambda r: Path(r).stem)
def test_no_mms_asset_lists_s7comm(rel: str, events: Callable[[str], list[Event]]) -> None:
    t = AssetTracker(oui=False)
    for e in events(rel):
        t.observe(e)
    assets = t.snapshot()
    listing = {a.ip for a in assets if "s7comm" in (a.protocols or [])}
    assert listing == UNIDENTIFIED_HOSTS.get(rel, set())
    if "mms" in {p for a in assets for p in (a.protocols or [])}:
        assert any("mms" in (a.protocols or []) and "s7comm" not in (a.protocols or []) for a in assets)
