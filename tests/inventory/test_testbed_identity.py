"""The inventory of every testbed capture against what the testbed's stacks were configured to announce.

Expected values are never typed here: they come from ``identity(cfg)`` in tests/testbed/stacks/<stack>.py,
the function the stack's server itself uses, applied to the scenario's ``plcs`` entry and the PLC's
address from the capture's labels file.  The last tests show that the comparison fails when the
decoder reads a value differently (a capture whose announced bytes differ, a drifted parser).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from detection.inventory.vendors import normalize_vendor
from pipeline.schema import Asset
from tests.testbed.runner import load_scenario
from tests.testbed.stacks import load as load_stack

from .conftest import REPO, events, inventory

#: stack -> scenario recorded into pcaps/<stack>/<scenario>.pcap
SCENARIOS = {"s7comm": "s7comm_plant_attack", "enip": "enip_plant_attack", "bacnet": "bacnet_plant_attack",
             "opcua": "opcua_plant_attack"}


def _capture(stack: str) -> tuple[Path, dict[str, Any]]:
    name = SCENARIOS[stack]
    labels = yaml.safe_load((REPO / "pcaps" / stack / f"{name}.labels.yml").read_text(encoding="utf-8"))
    return REPO / "pcaps" / stack / labels["capture"], labels


def announced(stack: str) -> dict[str, dict[str, Any]]:
    """ip -> the identity the stack's server at that address was configured with."""
    sc = load_scenario(SCENARIOS[stack])
    _, labels = _capture(stack)
    mod = load_stack(stack)
    out = {}
    for role, cfg in sc["plcs"].items():
        ip = labels["hosts"][role]["ip"]
        out[ip] = mod.identity({**cfg, "bind": ip})
    return out


def _evidence(a: Asset, field: str) -> set[str]:
    return {e.value for e in a.evidence if e.field == field}


def expected_asset(stack: str, ident: dict[str, Any]) -> dict[str, str | None]:
    """The inventory attributes the announced identity must produce (how each stack's fields map)."""
    if stack == "s7comm":
        return {"vendor": ident["vendor"], "model": ident["module_order_number"], "firmware": ident["firmware_version"],
                "serial": ident["serial_number"], "product": ident["module_type_name"], "name": ident["module_name"]}
    if stack == "enip":
        return {"vendor": ident["vendor"], "model": ident["product_name"], "firmware": ident["revision"],
                "serial": ident["serial"], "product": ident["product_name"]}
    if stack == "bacnet":
        vendor = normalize_vendor(ident["vendor_name"])
        return {"vendor": vendor.name if vendor else None, "model": ident["model_name"],
                "firmware": ident["firmware_revision"], "serial": ident["serial_number"], "name": ident["object_name"]}
    if stack == "opcua":
        # BuildInfo values the attacker's Read returns; the application name from the endpoint descriptions
        vendor = normalize_vendor(ident["manufacturer_name"])
        return {"vendor": vendor.name if vendor else None, "model": ident["product_name"], "firmware": ident["software_version"],
                "product": ident["product_name"], "serial": None, "name": ident["application_name"]}
    raise ValueError(stack)


def mismatches(stack: str, capture: Path | None = None, ips: set[str] | None = None) -> list[str]:
    """Every difference between the capture's inventory and what the stack announced (empty: all agree);
    `ips`: only these PLCs (a shortened run reads the identity of some)."""
    path = capture or _capture(stack)[0]
    inv = inventory(path)
    bad: list[str] = []
    for ip, ident in announced(stack).items():
        if ips is not None and ip not in ips:
            continue
        a = inv.get(ip)
        if a is None:
            bad.append(f"{ip}: not in the inventory")
            continue
        for attr, want in expected_asset(stack, ident).items():
            got = getattr(a, attr)
            if got != want:
                bad.append(f"{ip} {attr}: inventory {got!r}, announced {want!r}")
        # evidence: the raw announced values, as written on the wire, each with its frame
        raw = {"s7comm": {"hardware": "hardware_version"}, "bacnet": {"vendor": "vendor_name", "software": "application_software_version"},
               "enip": {}, "opcua": {"vendor": "manufacturer_name", "build": "build_number", "product_uri": "product_uri",
                                     "product": "application_uri"}}[stack]
        for field, key in raw.items():
            if ident[key] not in _evidence(a, field):
                bad.append(f"{ip} evidence {field}: {sorted(_evidence(a, field))}, announced {ident[key]!r}")
        for e in a.evidence:
            if e.field in ("model", "firmware", "serial") and (e.frame is None or e.file != path.name):
                bad.append(f"{ip} evidence {e.field}={e.value!r} names no frame of {path.name}")
    return bad


@pytest.mark.parametrize("stack", sorted(SCENARIOS))
def test_inventory_matches_what_the_stack_announced(stack: str) -> None:
    assert announced(stack), "the scenario has no PLC"
    assert mismatches(stack) == []


@pytest.mark.parametrize("stack", ["s7comm", "enip", "bacnet", "opcua"])
def test_every_plc_is_identified_and_clients_are_not(stack: str) -> None:
    path, labels = _capture(stack)
    inv = inventory(path)
    plcs = set(announced(stack))
    assert plcs <= set(inv)
    for ip, a in inv.items():
        if ip in plcs:
            # OPC UA's BuildInfo has no serial number
            assert a.role in ("plc", "field_device", "opc_server") and a.model and a.firmware and (a.serial or stack == "opcua"), (ip, a.role)
        else:  # HMI, engineering station, attacker: they announce nothing, nothing is invented
            assert (a.model, a.firmware, a.serial) == (None, None, None), ip


def _patched_capture(tmp_path: Path, stack: str, old: bytes, new: bytes) -> Path:
    src, _ = _capture(stack)
    data = src.read_bytes()
    assert len(old) == len(new) and old in data, (stack, old)
    out = tmp_path / src.name
    out.write_bytes(data.replace(old, new))
    return out


@pytest.mark.parametrize("stack,key,attrs", [("s7comm", "serial_number", {"serial"}), ("bacnet", "model_name", {"model"}),
                                             ("enip", "product_name", {"model", "product"}),
                                             ("opcua", "software_version", {"firmware"}), ("opcua", "manufacturer_name", {"vendor", "evidence"})])
def test_a_different_announcement_fails_the_comparison(tmp_path: Path, stack: str, key: str, attrs: set[str]) -> None:
    ident = next(iter(announced(stack).values()))
    old = str(ident[key]).encode()
    changed = _patched_capture(tmp_path, stack, old, old[:-1] + (b"X" if old[-1:] != b"X" else b"Y"))
    bad = mismatches(stack, changed)
    assert bad and {b.split()[1].rstrip(":") for b in bad} == attrs, bad


def test_a_drifted_decoder_fails_the_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    """An off-by-one in the S7 firmware field (the minor and patch bytes swapped) is caught."""
    from sensors.decoders.s7comm import parser

    real = parser.szl_response

    def drifted(data: bytes, expected_id: int | None) -> dict[str, Any]:
        f = real(data, expected_id)
        if "firmware_version" in f:
            major, minor, patch = f["firmware_version"].lstrip("V").split(".")
            f["firmware_version"] = f"V{major}.{patch}.{minor}"
        return f

    monkeypatch.setattr(parser, "szl_response", drifted)
    monkeypatch.setattr("sensors.decoders.s7comm.flow.szl_response", drifted)
    events.cache_clear()
    try:
        bad = mismatches("s7comm")
    finally:
        events.cache_clear()
    assert bad and all("firmware" in b for b in bad), bad


def test_a_drifted_opcua_node_table_fails_the_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    """ProductName (i=2261) and ManufacturerName (i=2263) swapped in the decoder's identity-node table is caught."""
    from sensors.decoders.opcua import constants

    drifted = {**constants.IDENTITY_NODES, "i=2261": "manufacturer_name", "i=2263": "product_name"}
    monkeypatch.setattr(constants, "IDENTITY_NODES", drifted)
    events.cache_clear()
    try:
        bad = mismatches("opcua")
    finally:
        events.cache_clear()
    assert bad and {b.split()[1].rstrip(":") for b in bad} == {"vendor", "model", "product", "evidence"}, bad


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_reads_the_same_identity() -> None:
    import subprocess

    path, _ = _capture("enip")
    out = subprocess.run(["tshark", "-r", str(path), "-Y", "enip.lir.name", "-T", "fields", "-e", "ip.src",
                          "-e", "enip.lir.name", "-e", "enip.lir.serial"], capture_output=True, text=True, check=True).stdout
    rows = {tuple(line.split("\t")) for line in out.splitlines() if line}
    inv = inventory(path)
    assert rows and rows == {(ip, inv[ip].model, inv[ip].serial) for ip in announced("enip") if (ip, inv[ip].model, inv[ip].serial) in rows}
    assert {r[0] for r in rows} == set(announced("enip"))


def test_real_csaf_advisories_match_the_testbed_s7_plcs_and_nothing_else() -> None:
    """The shared CSAF set (CISA ICS advisories) against the testbed's identities: the S7-300 CPU 317-2 PN/DP at the
    firmware stacks/s7comm.py announces is covered by advisories fixed in V3.2.19 (exact order-number matches); the
    1756-L71 (a ControlLogix 5570) at revision 20.13 by ControlLogix advisories (family matches); the BACnet device by none."""
    from detection.vulns.csaf import load_dir
    from detection.vulns.match import match_inventory

    from .conftest import CSAF, need

    idx = load_dir(need(CSAF))
    for stack in ("s7comm", "enip", "bacnet"):
        path, _ = _capture(stack)
        inv = inventory(path)
        for ip, ident in announced(stack).items():
            found = match_inventory([inv[ip]], idx)
            if stack == "bacnet":
                assert found == [], (stack, ip, [f.advisory_id for f in found])
                continue
            if stack == "enip":
                assert found and {f.match for f in found} == {"family"} and {f.firmware for f in found} == {ident["revision"]}
                fix = next(f for f in found if f.advisory_id == "ICSA-22-144-01")
                assert (fix.status, fix.product, fix.version_range) == ("affected", "ControlLogix 5570 controllers", "<= 33.013")
                continue
            fix = next(f for f in found if f.advisory_id == "ICSA-22-314-02")
            assert (fix.status, fix.match, fix.version_range, fix.firmware) == (
                "affected", "exact", "vers:all/<V3.2.19", ident["firmware_version"])
            assert "6ES7317-2EK14-0AB0" in fix.product.replace(" ", "")


def test_an_address_announcing_two_identities_is_matched_per_identity() -> None:
    """The S7 and BACnet testbed plants reuse 10.10.1.101: one asset then carries the S7 CPU's identity (firmware
    V3.2.x) and the BACnet controller's (firmware V02.20.112). Advisories for the S7 order number must be judged on
    the S7 firmware with S7 evidence, never on the BACnet firmware the asset's chosen values may hold."""
    from detection.vulns.csaf import load_dir
    from detection.vulns.match import identities, match_inventory

    from .conftest import CSAF, need

    idx = load_dir(need(CSAF))
    s7_path, _ = _capture("s7comm")
    bacnet_path, _ = _capture("bacnet")
    s7, bacnet = announced("s7comm"), announced("bacnet")
    ip = next(ip for ip in s7 if ip in bacnet)
    asset = inventory(s7_path, bacnet_path)[ip]
    by_source = {i.source: i for i in identities(asset)}
    assert {"s7comm", "bacnet"} <= set(by_source)
    assert by_source["s7comm"].firmware == s7[ip]["firmware_version"]
    assert by_source["bacnet"].firmware != s7[ip]["firmware_version"]
    found = match_inventory([asset], idx)
    alone = {(f.advisory_id, f.status, f.firmware) for f in match_inventory([inventory(s7_path)[ip]], idx)}
    assert found and {(f.advisory_id, f.status, f.firmware) for f in found} == alone
    assert {f.firmware for f in found} == {s7[ip]["firmware_version"]}
    assert all(not e["source"].startswith("bacnet.") for f in found for e in f.evidence)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
@pytest.mark.parametrize("name", ["python_opcua-client-server_minimal.pcap", "open62541_client-server_minimal.pcap"])
def test_corpus_opcua_servers_are_named_from_their_endpoints(name: str) -> None:
    """The corpus OPC UA traces read no BuildInfo: the server's inventory holds what its endpoint descriptions
    say (GetEndpoints or CreateSession response: application name and URI, product URI, as tshark reads them)
    and no vendor, model or firmware."""
    import subprocess

    from .conftest import CORPUS, need

    path = need(CORPUS / "icsnpp-opcua-binary" / "traces" / name)
    out = subprocess.run(["tshark", "-r", str(path), "-Y", "opcua.servicenodeid.numeric == 431 || opcua.servicenodeid.numeric == 464", "-T", "fields",
                          "-E", "occurrence=f", "-e", "ip.src", "-e", "ipv6.src", "-e", "opcua.ApplicationUri",
                          "-e", "opcua.ProductUri", "-e", "opcua.loctext.Text"], capture_output=True, text=True, check=True).stdout
    rows = {tuple(c for c in line.split("\t")) for line in out.splitlines() if line}
    assert rows
    inv = inventory(path)
    for ip4, ip6, app_uri, product_uri, app_name in rows:
        a = inv[ip4 or ip6]
        assert (a.name, a.product) == (app_name, app_uri)
        assert product_uri in _evidence(a, "product_uri")
        assert (a.vendor, a.model, a.firmware) == (None, None, None)
