"""FINS and MMS exposure from corpus traffic: what the risk score and the self-assessment count.

FINS has no authentication at all, so a device answering FINS serves an unauthenticated control
protocol; an MMS server that is asked for an association without a calling-authentication-value
(tshark shows the AARQ without any authentication field) accepts unauthenticated clients.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from detection.assets import AssetTracker
from detection.commap import INSECURE_PROTOCOLS
from detection.risk import EXPOSURE_POINTS, exposure_components
from pipeline.schema import Asset
from sensors.engine import decode_file

from .conftest import need

SHARED = Path(__file__).resolve().parents[3] / "shared" / "corpus"
FINS = SHARED / "icsnpp-omron-fins" / "traces" / "omron_fins_tcp_commands_responses.pcap"
MMS = SHARED / "iti-ics-security-tools" / "IEC61850" / "piccolo.pcap"


def _assets(path: Path) -> dict[str, Asset]:
    t = AssetTracker()
    for e in decode_file(str(need(path))):
        t.observe(e)
    return {a.ip: a for a in t.snapshot()}


def test_a_device_answering_fins_is_exposed_and_scored() -> None:
    assets = _assets(FINS)
    exposed = {ip for ip, a in assets.items() if "fins" in a.exposures}
    servers = {e.source.ip for e in decode_file(str(FINS)) if e.fins is not None and e.network and e.network.direction == "response"}
    assert exposed and exposed == servers
    ip = next(iter(exposed))
    comp = {c.key: c for c in exposure_components(assets[ip])}
    assert comp["exposure.fins"].points == EXPOSURE_POINTS["fins"] and "FINS" in comp["exposure.fins"].reason_zh
    assert "fins" in INSECURE_PROTOCOLS
    clients = set(assets) - exposed
    assert clients and not any("fins" in assets[c].exposures for c in clients)


def test_an_mms_server_asked_for_unauthenticated_associations_is_exposed(tshark: str) -> None:
    events = [e for e in decode_file(str(need(MMS))) if e.mms is not None and e.mms.authenticated is not None]
    assert events and {e.mms.authenticated for e in events} == {False}
    # tshark decodes the same AARQs with no authentication mechanism or value
    out = subprocess.run([tshark, "-r", str(MMS), "-Y", "acse.aarq_element", "-T", "fields", "-e", "frame.number",
                          "-e", "acse.calling_authentication_value", "-e", "acse.mechanism_name"],
                         capture_output=True, text=True, check=True).stdout.split("\n")
    rows = [r.split("\t") for r in out if r.strip()]
    assert {int(r[0]) for r in rows} == {e.evidence.frame for e in events if e.evidence is not None}
    assert all(not any(x.strip() for x in r[1:]) for r in rows)
    assets = _assets(MMS)
    servers = {e.destination.ip for e in events if e.destination is not None}
    assert servers and all("mms_no_auth" in assets[ip].exposures for ip in servers)
    comp = {c.key: c for ip in servers for c in exposure_components(assets[ip])}
    assert comp["exposure.mms_no_auth"].points == EXPOSURE_POINTS["mms_no_auth"]


@pytest.mark.parametrize("path", [FINS, MMS])
def test_exposure_keys_all_have_chinese_labels(path: Path) -> None:
    for a in _assets(path).values():
        for c in exposure_components(a):
            assert c.reason_zh and c.reason_en
