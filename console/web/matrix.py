"""ATT&CK for ICS matrix: tactics × techniques with this tenancy's alert counts, cells linking to the alert list.

The techniques are loaded once at app start from ATTACK_ICS (a folder holding `techniques.csv` with
`id,name,tactics`, or MITRE's STIX `ics-attack.json`; default ../shared/data/attack-ics beside the
repository); without it, a bundled list of the techniques our rules name.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, current_app, render_template
from flask.blueprints import BlueprintSetupState

from pipeline.store import Query

from .auth import requires
from .params import organization
from .store import get_store

TACTICS = ("Initial Access", "Execution", "Persistence", "Privilege Escalation", "Evasion", "Discovery",
           "Lateral Movement", "Collection", "Command and Control", "Inhibit Response Function",
           "Impair Process Control", "Impact")
DEFAULT_PATH = Path(__file__).resolve().parents[3] / "shared" / "data" / "attack-ics"
EXTENSION = "qinling.attack_ics"
# the techniques rules/ names, for a console without the shared data: id -> (name, tactics)
BUNDLED: dict[str, tuple[str, tuple[str, ...]]] = {
    "T0800": ("Activate Firmware Update Mode", ("Inhibit Response Function",)),
    "T0801": ("Monitor Process State", ("Collection",)),
    "T0802": ("Automated Collection", ("Collection",)),
    "T0803": ("Block Command Message", ("Inhibit Response Function",)),
    "T0804": ("Block Reporting Message", ("Inhibit Response Function",)),
    "T0809": ("Data Destruction", ("Inhibit Response Function",)),
    "T0812": ("Default Credentials", ("Lateral Movement",)),
    "T0814": ("Denial of Service", ("Inhibit Response Function",)),
    "T0815": ("Denial of View", ("Impact",)),
    "T0816": ("Device Restart/Shutdown", ("Inhibit Response Function",)),
    "T0831": ("Manipulation of Control", ("Impact",)),
    "T0836": ("Modify Parameter", ("Impair Process Control",)),
    "T0839": ("Module Firmware", ("Persistence", "Impair Process Control")),
    "T0842": ("Network Sniffing", ("Discovery",)),
    "T0843": ("Program Download", ("Lateral Movement",)),
    "T0845": ("Program Upload", ("Collection",)),
    "T0846": ("Remote System Discovery", ("Discovery",)),
    "T0848": ("Rogue Master", ("Initial Access",)),
    "T0855": ("Unauthorized Command Message", ("Impair Process Control",)),
    "T0856": ("Spoof Reporting Message", ("Evasion", "Impair Process Control")),
    "T0857": ("System Firmware", ("Persistence", "Inhibit Response Function")),
    "T0858": ("Change Operating Mode", ("Execution", "Evasion")),
    "T0859": ("Valid Accounts", ("Persistence", "Lateral Movement")),
    "T0861": ("Point & Tag Identification", ("Collection",)),
    "T0866": ("Exploitation of Remote Services", ("Initial Access", "Lateral Movement")),
    "T0867": ("Lateral Tool Transfer", ("Lateral Movement",)),
    "T0871": ("Execution through API", ("Execution",)),
    "T0872": ("Indicator Removal on Host", ("Evasion",)),
    "T0881": ("Service Stop", ("Inhibit Response Function",)),
    "T0883": ("Internet Accessible Device", ("Initial Access",)),
    "T0886": ("Remote Services", ("Initial Access", "Lateral Movement")),
    "T0888": ("Remote System Information Discovery", ("Discovery",)),
    "T0889": ("Modify Program", ("Persistence",)),
}


def load(path: str | Path | None) -> tuple[dict[str, tuple[str, tuple[str, ...]]], str]:
    """(techniques, where they came from); the bundled list when the path holds neither file."""
    folder = Path(path) if path else DEFAULT_PATH
    csv_path = folder if folder.suffix == ".csv" else folder / "techniques.csv"
    if csv_path.is_file():
        with open(csv_path, newline="", encoding="utf-8") as f:
            return {r["id"]: (r["name"], tuple(t for t in r["tactics"].split(";") if t)) for r in csv.DictReader(f)}, str(csv_path)
    stix = folder if folder.suffix == ".json" else folder / "ics-attack.json"
    if stix.is_file():
        return _from_stix(json.loads(stix.read_text(encoding="utf-8"))), str(stix)
    return dict(BUNDLED), "bundled"


def _from_stix(bundle: dict[str, Any]) -> dict[str, tuple[str, tuple[str, ...]]]:
    names = {t.lower().replace(" ", "-"): t for t in TACTICS}
    out = {}
    for o in bundle.get("objects", []):
        if o.get("type") != "attack-pattern" or o.get("revoked") or o.get("x_mitre_deprecated"):
            continue
        tid = next((r.get("external_id") for r in o.get("external_references", []) if r.get("source_name") == "mitre-attack"), None)
        if tid:
            tactics = tuple(names.get(p.get("phase_name", ""), p.get("phase_name", "")) for p in o.get("kill_chain_phases", []))
            out[tid] = (o.get("name", tid), tactics)
    return out


bp = Blueprint("matrix", __name__)


@bp.record_once
def _load(state: BlueprintSetupState) -> None:
    app: Flask = state.app
    app.extensions[EXTENSION] = load(app.config.get("ATTACK_ICS"))


@bp.get("/attack/")
@requires("data.read")
def index() -> str:
    techniques, source = current_app.extensions[EXTENSION]
    counts = {str(t): n for t, n in get_store().count_by("alerts", "threat.technique.id", Query(organization=organization(), size=0), top=1000)}
    columns = []
    for tactic in TACTICS:
        cells = sorted(((tid, name, counts.get(tid, 0)) for tid, (name, tactics) in techniques.items() if tactic in tactics),
                       key=lambda c: (-c[2], c[0]))
        columns.append((tactic, cells, sum(c[2] for c in cells)))
    unknown = sorted((t, n) for t, n in counts.items() if t not in techniques)
    return render_template("triage/matrix.html", columns=columns, unknown=unknown, source=source,
                           total=sum(counts.values()), peak=max(counts.values(), default=0))
