"""The `qinling` command line end to end, as a user runs it: real processes, real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def qinling(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console", *args], cwd=cwd or REPO, capture_output=True, text=True, timeout=300
    )


def bundled_attack() -> Path:
    caps = sorted((REPO / "pcaps" / "modbus").glob("*attack*.pcap"))
    if not caps:
        pytest.fail("pcaps/modbus has no attack scenario capture")
    return caps[0]


def test_decode_writes_one_event_per_line(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    r = qinling("decode", str(bundled_attack()), "--out", str(out))
    assert r.returncode == 0, r.stderr
    docs = [json.loads(l) for l in out.read_text().splitlines()]
    modbus = [d for d in docs if d["event"]["dataset"] == "modbus"]
    assert modbus and all(d["evidence"]["frame"] >= 1 and len(d["evidence"]["file_sha256"]) == 64 for d in modbus)
    assert any(d["event"]["dataset"] == "flow" and d["network"]["community_id"].startswith("1:") for d in docs)
    assert "events" in r.stderr  # the closing summary


def test_replay_writes_alerts_and_a_summary_table(tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    db = tmp_path / "q.sqlite"
    r = qinling("replay", str(bundled_attack()), "--out", str(out), "--store", f"sqlite:///{db}", "--no-progress")
    assert r.returncode == 0, r.stderr
    alerts = [json.loads(l) for l in out.read_text().splitlines()]
    assert alerts and all(a["event"]["kind"] == "alert" and a["evidence"]["frames"] for a in alerts)
    rule_ids = {a["rule"]["id"] for a in alerts}
    for rid in rule_ids:
        assert rid in r.stderr  # every rule that fired is in the summary table
    from pipeline.store import Query, open_store

    store = open_store(f"sqlite:///{db}")
    try:
        assert store.search("alerts", Query(size=1)).total == len(alerts)
        assert store.search_assets(Query()).total >= 3
    finally:
        store.close()


def test_truncated_capture_keeps_what_was_decoded(tmp_path: Path) -> None:
    full = bundled_attack().read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(full[: len(full) // 2 + 7])  # mid-record
    out = tmp_path / "events.jsonl"
    r = qinling("decode", str(cut), "--out", str(out))
    assert r.returncode == 3, r.stderr
    assert "truncat" in r.stderr.lower() and "cut.pcap" in r.stderr
    whole = qinling("decode", str(bundled_attack()), "--out", str(tmp_path / "all.jsonl"))
    assert whole.returncode == 0
    n_cut, n_all = len(out.read_text().splitlines()), len((tmp_path / "all.jsonl").read_text().splitlines())
    assert 0 < n_cut < n_all


def test_a_file_that_is_not_a_capture_gets_a_clear_message(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.pcap"
    bogus.write_text("this is not a capture\n" * 20)
    r = qinling("replay", str(bogus), "--no-store", "--out", str(tmp_path / "a.jsonl"))
    assert r.returncode == 3
    assert "notes.pcap" in r.stderr and "capture" in r.stderr.lower()
    assert "Traceback" not in r.stderr


def test_missing_file_is_named() -> None:
    r = qinling("decode", "/nonexistent/x.pcap")
    assert r.returncode != 0 and "/nonexistent/x.pcap" in r.stderr and "Traceback" not in r.stderr


def test_rules_lint_passes_on_the_bundled_pack() -> None:
    r = qinling("rules", "lint")
    assert r.returncode == 0, r.stderr


def test_rules_lint_reports_every_problem_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(
        "id: qn-test-1\ntitle: t\nlevel: high\nattack: [T0855]\nmatch:\n  event.dataset: modbus\n  modbus.no_such: 1\n"
    )
    (tmp_path / "b.yml").write_text("id: qn-test-2\ntitle: t\nlevel: severe\nattack: [T0855]\nmatch:\n  event.dataset: modbus\n")
    r = qinling("rules", "lint", str(tmp_path))
    assert r.returncode == 1
    assert f"{tmp_path / 'a.yml'}:7" in r.stderr
    assert str(tmp_path / "b.yml") + ":3" in r.stderr


@pytest.mark.parametrize("command", ["demo", "users", "learn", "evaluate", "assets", "vulns", "detect", "index", "services"])
def test_every_registered_subcommand_answers_help(command: str) -> None:
    r = qinling(command, "--help")
    assert r.returncode == 0, r.stderr
    assert "usage: qinling" in r.stdout


def test_port_option_extends_every_transport_of_a_protocol() -> None:
    from console.jobs import registry

    reg = registry({"dnp3": [20001]})
    assert {(s.transport, 20001 in s.default_ports) for s in reg.values() if s.name == "dnp3"} == {("tcp", True), ("udp", True)}
    with pytest.raises(SystemExit, match="no decoder named 'dnp4'"):
        registry({"dnp4": [1]})


def test_replay_learn_first_adds_anomaly_alerts(tmp_path: Path) -> None:
    """An auditor's capture with no prior model: learn its first two minutes, then protect."""
    cap = REPO / "pcaps" / "modbus" / "anomaly_setpoint.pcap"
    out = tmp_path / "alerts.jsonl"
    r = qinling("replay", str(cap), "--no-store", "--no-progress", "--learn-first", "120s", "--out", str(out))
    assert r.returncode == 0, r.stderr
    rules = {json.loads(l)["rule"]["id"] for l in out.read_text().splitlines()}
    assert any(rid.startswith("qn-anomaly-") for rid in rules), rules
    plain = qinling("replay", str(cap), "--no-store", "--no-progress", "--out", str(tmp_path / "rules.jsonl"))
    assert plain.returncode == 0
    assert not any(json.loads(l)["rule"]["id"].startswith("qn-anomaly-") for l in (tmp_path / "rules.jsonl").read_text().splitlines())
    bad = qinling("replay", str(cap), "--no-store", "--learn-first", "soon")
    assert bad.returncode != 0 and "--learn-first 'soon'" in bad.stderr
