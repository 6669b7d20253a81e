"""Models as artefacts: joblib + metadata, site refusal, atomic retrain under flowing events, relearning one pair."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from detection.anomaly import rules as R
from detection.anomaly.engine import AnomalyEngine
from detection.anomaly.exceptions import ModelError, SiteMismatchError
from detection.anomaly.model import current_version, load_model, save_model, train

from .conftest import SITE, events_of, scenario, split


@pytest.fixture(scope="module")
def setpoint_model():
    learn, rest = split(events_of("anomaly_setpoint"))
    return train(SITE, learn), learn, rest


def test_save_load_metadata(tmp_path: Path, setpoint_model) -> None:
    model, learn, _ = setpoint_model
    version = save_model(model, tmp_path)
    meta = json.loads((version / "model.json").read_text())
    assert meta["site"] == SITE
    assert meta["training_window"]["start"] >= min(e.timestamp for e in learn).isoformat()
    assert meta["training_window"]["end"] <= max(e.timestamp for e in learn).isoformat()
    assert meta["features"] and meta["multivariate"]["method"] == "lof"
    assert {"scikit-learn", "numpy", "joblib", "python"} <= set(meta["versions"])
    import hashlib

    assert meta["sha256"] == hashlib.sha256((version / "model.joblib").read_bytes()).hexdigest()
    loaded, meta2 = load_model(tmp_path, SITE)
    assert loaded.baseline.links == model.baseline.links and meta2 == meta
    assert current_version(tmp_path) == version.name


def test_other_site_is_refused(tmp_path: Path, setpoint_model) -> None:
    save_model(setpoint_model[0], tmp_path)
    with pytest.raises(SiteMismatchError, match=r"learned for site 'plant-a', not 'plant-b'"):
        load_model(tmp_path, "plant-b")
    with pytest.raises(SiteMismatchError):
        AnomalyEngine("plant-b", model_dir=tmp_path)
    with pytest.raises(SiteMismatchError):
        AnomalyEngine("plant-b", setpoint_model[0])


def test_corrupt_or_missing_model(tmp_path: Path, setpoint_model) -> None:
    with pytest.raises(ModelError, match="no model here"):
        load_model(tmp_path / "nothing")
    version = save_model(setpoint_model[0], tmp_path)
    with open(version / "model.joblib", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(ModelError, match="checksum does not match"):
        load_model(tmp_path, SITE)


def test_retrain_while_events_flow_loses_no_alerts(tmp_path: Path, setpoint_model) -> None:
    model, learn, rest = setpoint_model
    save_model(model, tmp_path)
    reference = [a.event.id for a in AnomalyEngine(SITE, model_dir=tmp_path).process_many(rest)]
    assert reference

    eng = AnomalyEngine(SITE, model_dir=tmp_path)
    first = current_version(tmp_path)
    swaps = 0
    alerts = []
    retrainer = threading.Thread(target=lambda: [save_model(train(SITE, learn), tmp_path) for _ in range(2)])
    for i, e in enumerate(rest):
        if i == len(rest) // 4:
            retrainer.start()  # retrains and replaces the model twice while events keep flowing
        if i == 3 * len(rest) // 4:
            retrainer.join()
        if i % 25 == 0:
            swaps += eng.reload_if_changed()
        alerts.extend(eng.process(e))
    alerts.extend(eng.finish())
    assert current_version(tmp_path) != first and swaps >= 1
    assert [a.event.id for a in alerts] == reference


def test_relearn_one_pair(tmp_path: Path, setpoint_model) -> None:
    """The HMI's new PLC2 address block (slow_recon) is accepted as a configuration change; nothing else moves."""
    model, learn, rest = setpoint_model
    pair = ("10.10.1.10", "10.10.1.102")
    before = [a for a in AnomalyEngine(SITE, model).process_many(rest) if a.rule.id == R.NEW_ADDRESS.id]
    assert before
    eng = AnomalyEngine(SITE, model)
    new = eng.relearn_link(*pair, rest)
    link = (*pair, "modbus")
    assert new.baseline.links[link]["fc4"] != model.baseline.links[link]["fc4"]
    for other, funcs in model.baseline.links.items():
        if other[:2] != pair:
            assert new.baseline.links[other] == funcs
    assert {k: v for k, v in new.baseline.cycles.items() if k[:2] != pair} == \
        {k: v for k, v in model.baseline.cycles.items() if k[:2] != pair}
    after = AnomalyEngine(SITE, new).process_many(rest)
    assert not [a for a in after if a.rule.id == R.NEW_ADDRESS.id]
    # Other links are judged as before: the out-of-range setpoint from the engineering station still alerts.
    assert [a for a in after if a.rule.id == R.VALUE.id]
    assert new.relearned[-1]["client"] == pair[0]
    with pytest.raises(ModelError, match="holds no request"):
        model.relearn_link("10.9.9.9", "10.10.1.101", rest)


def test_cli_learn_relearn_evaluate(tmp_path: Path, capsys) -> None:
    from console.cli import main

    caps = Path(scenario("anomaly_setpoint").capture).parent
    normal = str(caps / "modbus_normal_only.pcap")
    out = tmp_path / "model"
    assert main(["learn", normal, "--site", "test", "--out", str(out)]) == 0
    v1 = current_version(out)
    assert main(["learn", str(caps / "modbus_plant_attack.pcap"), "--site", "test", "--out", str(out),
                 "--relearn-link", "10.10.1.20", "10.10.1.101"]) == 0
    assert current_version(out) != v1
    model, meta = load_model(out, "test")
    assert meta["relearned"][0]["client"] == "10.10.1.20"
    attack = caps / "modbus_plant_attack"
    rc = main(["evaluate", f"{attack}.pcap", "--labels", f"{attack}.labels.yml", "--model", str(out), "--site", "test",
               "--record", str(tmp_path / "runs")])
    text = capsys.readouterr().out
    assert rc == 0 and "13/13 attack steps detected" in text
    [rec] = json.loads(next((tmp_path / "runs").glob("*.json")).read_text())["scenarios"]
    assert rec["scenario"] == "modbus_plant_attack" and all(s["detected"] for s in rec["steps"])
    assert main(["evaluate", f"{attack}.pcap", "--labels", f"{attack}.labels.yml", "--model", str(out),
                 "--site", "other", "--no-record"]) == 2
    assert "learned for site 'test'" in capsys.readouterr().err
