"""The inventory of the IEC 61850 MMS testbed capture against what the libiec61850 IEDs announced.

Expected values come from ``identity(cfg)`` in tests/testbed/stacks/mms.py (the function the IedServer's
``IedServer_setServerIdentity`` is called with), applied to the scenario's ``plcs`` entries and the IEDs'
addresses from the labels file; nothing is typed here.  The last tests show the comparison fails when the
capture announces something else or the decoder reads the identify answer wrongly.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.testbed.runner import load_scenario
from tests.testbed.stacks import mms

from .conftest import REPO, events, inventory

SCENARIO = "mms_plant_attack"
LABELS = REPO / "pcaps" / "mms" / f"{SCENARIO}.labels.yml"


def _capture() -> tuple[Path, dict[str, Any]]:
    labels = yaml.safe_load(LABELS.read_text(encoding="utf-8"))
    return LABELS.parent / labels["capture"], labels


def announced() -> dict[str, dict[str, str]]:
    """ip -> the identity the IED at that address was configured with."""
    sc = load_scenario(SCENARIO)
    _, labels = _capture()
    return {labels["hosts"][role]["ip"]: mms.identity({**cfg, "bind": labels["hosts"][role]["ip"]}) for role, cfg in sc["plcs"].items()}


def mismatches(capture: Path | None = None) -> list[str]:
    path = capture or _capture()[0]
    inv = inventory(path)
    bad: list[str] = []
    for ip, ident in announced().items():
        a = inv.get(ip)
        if a is None:
            bad.append(f"{ip}: not in the inventory")
            continue
        want = {"vendor": ident["vendor"], "model": ident["model"], "product": ident["model"], "firmware": ident["revision"], "role": "ied"}
        for attr, value in want.items():
            if getattr(a, attr) != value:
                bad.append(f"{ip} {attr}: inventory {getattr(a, attr)!r}, announced {value!r}")
        for e in a.evidence:
            if e.field in ("vendor", "model", "firmware") and (e.frame is None or e.file != path.name):
                bad.append(f"{ip} evidence {e.field}={e.value!r} names no frame of {path.name}")
    return bad


def test_both_ieds_announce_different_identities() -> None:
    ids = announced()
    assert len(ids) == 2 and len({tuple(v.values()) for v in ids.values()}) == 2
    assert mms.IDENTITY in ids.values()  # plc1 keeps the stack's default


def test_inventory_matches_what_the_ieds_announced() -> None:
    assert mismatches() == []


def test_clients_are_not_given_an_identity() -> None:
    inv = inventory(_capture()[0])
    ieds = set(announced())
    clients = set(inv) - ieds
    assert {"10.10.1.10", "10.10.1.20", "10.10.1.66"} <= clients
    for ip in clients:
        a = inv[ip]
        assert (a.vendor, a.model, a.firmware) == (None, None, None), ip


def test_a_different_announcement_fails_the_comparison(tmp_path: Path) -> None:
    src, _ = _capture()
    old = mms.IDENTITY["model"].encode()
    new = old[:-1] + b"X"
    data = src.read_bytes()
    assert old in data
    changed = tmp_path / src.name
    changed.write_bytes(data.replace(old, new))
    bad = mismatches(changed)
    assert bad and {b.split()[1].rstrip(":") for b in bad} == {"model", "product"}, bad


def test_a_drifted_decoder_fails_the_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    """Vendor and model swapped when the identify answer is read: caught."""
    from sensors.decoders.mms import parser

    real = parser.parse_mms

    def drifted(data: bytes, *args: Any, **kw: Any) -> Any:
        r = real(data, *args, **kw)
        f = r.f
        if f.get("vendor_name") is not None:
            f["vendor_name"], f["model_name"] = f["model_name"], f["vendor_name"]
        return r

    patched = [m for m in ("sensors.decoders.mms.parser", "sensors.decoders.mms", "sensors.decoders.mms.session") if hasattr(__import__(m, fromlist=["x"]), "parse_mms")]
    for m in patched:
        monkeypatch.setattr(f"{m}.parse_mms", drifted)
    events.cache_clear()
    try:
        bad = mismatches()
    finally:
        events.cache_clear()
    assert bad and {b.split()[1].rstrip(":") for b in bad} >= {"vendor", "model"}, bad


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_reads_the_same_identity() -> None:
    path, _ = _capture()
    out = subprocess.run(["tshark", "-n", "-r", str(path), "-Y", "mms.vendorName", "-T", "fields", "-e", "ip.src",
                          "-e", "mms.vendorName", "-e", "mms.modelName", "-e", "mms.revision"], capture_output=True, text=True, check=True).stdout
    rows = {tuple(line.split("\t")) for line in out.splitlines() if line}
    assert rows == {(ip, v["vendor"], v["model"], v["revision"]) for ip, v in announced().items()}
