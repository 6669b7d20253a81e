"""S7 captures decode exactly as before the port-102 flow learned to hold a COTP set-up for MMS.

`s7comm_events_baseline.json` holds, per S7 capture, the number of events and a SHA-256 over each
event's id, frame, dataset, network protocol, action, outcome, s7comm protocol and COTP code and
anomaly code, in emission order, as the decoder produced them before COTP set-ups were held (commit
f06fcfa). Holding must change nothing on S7 traffic: same events, same ids and frames, same order.
An intended change to S7 decoding regenerates it: `python -m tests.decoders.s7comm.test_s7comm_unchanged`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from pipeline.schema import Event

from .conftest import S7_TRACES

BASELINE = Path(__file__).with_name("s7comm_events_baseline.json")
TESTBED = ("pcaps/s7comm/s7comm_plant_attack.pcap", "pcaps/s7comm/anomaly_s7comm.pcap")


def _key(d: dict[str, Any]) -> str:
    ev, s7, an, net = d["event"], d.get("s7comm") or {}, d.get("anomaly") or {}, d.get("network") or {}
    return "|".join(str(x) for x in (ev["id"], d["evidence"].get("frame"), ev["dataset"], net.get("protocol"), ev.get("action"), ev.get("outcome"), s7.get("protocol"), s7.get("cotp_pdu_code"), an.get("code")))


def fingerprint(events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    keys = [_key(d) for d in events]
    kinds = Counter(k.split("|", 2)[2].rsplit("|", 4)[0] for k in keys)  # dataset|protocol|action per kind, for a readable diff
    return {"events": len(keys), "sha256": hashlib.sha256("\n".join(keys).encode()).hexdigest(), "kinds": dict(sorted(kinds.items()))}


def _builtins(evs: list[Event]) -> list[dict[str, Any]]:
    # ARP frames became events later (sensors/decoders/arp): not S7 decoding, so not part of the fingerprint.
    return [msgspec.to_builtins(e) for e in evs if e.event.dataset != "arp"]


@pytest.fixture(scope="module")
def baseline() -> dict[str, Any]:
    return json.loads(BASELINE.read_text())


@pytest.mark.parametrize("rel", S7_TRACES, ids=lambda r: Path(r).stem)
def test_corpus_s7_capture_unchanged(rel: str, decoded: Callable[[str], list[Event]], baseline: dict[str, Any]) -> None:
    assert fingerprint(_builtins(decoded(rel))) == baseline[rel]


@pytest.mark.parametrize("rel", TESTBED, ids=lambda r: Path(r).stem)
def test_testbed_s7_capture_unchanged(rel: str, repo_root: Path, baseline: dict[str, Any]) -> None:
    from sensors.engine import decode_file

    path = repo_root / rel
    if not path.is_file():
        pytest.skip(f"{path} not present")
    assert fingerprint(_builtins(list(decode_file(path)))) == baseline[rel]


def _regenerate() -> None:  # pragma: no cover - run by hand after an intended change
    from sensors.engine import decode_file
    from tests.conftest import SHARED

    repo = Path(__file__).resolve().parents[3]
    out = {rel: fingerprint(_builtins(list(decode_file(SHARED / "corpus" / rel)))) for rel in S7_TRACES}
    out.update({rel: fingerprint(_builtins(list(decode_file(repo / rel)))) for rel in TESTBED})
    BASELINE.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":  # pragma: no cover
    _regenerate()
