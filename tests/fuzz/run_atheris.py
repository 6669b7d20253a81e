"""`make fuzz`: coverage-guided atheris (libFuzzer) runs of every fuzz target, one child process per target.

    python -m tests.fuzz.run_atheris [--seconds 60] [TARGET ...]      # targets: decoder:<key>, capture, rules, upload

Each target starts from the real seeds the hypothesis suite uses (written under .cache/fuzz/corpus/<target>/,
where libFuzzer also keeps the inputs it found interesting), runs for --seconds, and the table at the end gives
the inputs tried (libFuzzer's own count) and the crashes, whose inputs are kept under .cache/fuzz/crashes/.
A crash is turned into a regression test in tests/fuzz/ with that input.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / ".cache" / "fuzz"


def all_targets() -> list[str]:
    from sensors.decoders import REGISTRY

    return [f"decoder:{k}" for k in sorted(REGISTRY)] + ["capture", "rules", "upload"]


def write_seeds(target: str, folder: Path) -> None:
    from tests.fuzz import targets

    folder.mkdir(parents=True, exist_ok=True)
    if target.startswith("decoder:"):
        seeds = [b"\x3f\x00" + p for p in targets.payload_seeds()[target.split(":", 1)[1]]]
    elif target in ("capture", "upload"):
        seeds = [b for _n, b in targets.capture_seeds()]
    elif target == "rules":
        seeds = [t.encode() for _n, t in targets.rule_seeds()]
    else:
        raise SystemExit(f"unknown target {target!r}; choose from {', '.join(all_targets())}")
    for i, seed in enumerate(seeds):
        (folder / f"seed-{i:03d}").write_bytes(seed)


# ---------------------------------------------------------------- child: one target under atheris


def child(target: str, libfuzzer_args: list[str]) -> None:
    import atheris

    with atheris.instrument_imports(include=["sensors", "detection", "pipeline", "console"]):
        from tests.fuzz import targets

    workdir = tempfile.mkdtemp(prefix="qinling-fuzz-")
    if target.startswith("decoder:"):
        key = target.split(":", 1)[1]

        def one(data: bytes) -> None:
            targets.decoder_bytes(key, data)
    elif target == "capture":
        def one(data: bytes) -> None:
            targets.capture(data, workdir)
    elif target == "rules":
        def one(data: bytes) -> None:
            targets.rule_file(data, workdir)
    elif target == "upload":
        one = upload_target(workdir)
    else:
        raise SystemExit(f"unknown target {target!r}")
    atheris.Setup([sys.argv[0], *libfuzzer_args], one)
    atheris.Fuzz()


def upload_target(workdir: str):  # type: ignore[no-untyped-def]
    """The upload endpoint on a throw-away site: the first byte picks a hostile file name, the rest is the file."""
    import io

    from console.web import captures
    from pipeline.store.sqlite import SQLiteStore
    from tests.console.conftest import login, make_app, seed_accounts

    root = Path(workdir)
    with SQLiteStore(root / "console.sqlite"):
        pass
    seed_accounts(root / "accounts.sqlite")
    app = make_app(root / "console.sqlite", ORGANIZATION=None, MAX_UPLOAD_BYTES=64 * 1024, CAPTURE_QUEUE=1_000_000)
    client = login(app.test_client(), "auditor")
    token = client.get("/api/v1/session").get_json()["csrf_token"]
    names = ["x.pcap", "../../etc/passwd", "a\x00b.pcap", "\u202egnp.pcap", "..", "", "🐍" * 200, "<b>x</b>.pcapng"]
    folder = captures.upload_dir(app)

    def one(data: bytes) -> None:
        name = names[data[0] % len(names)] if data else ""
        resp = client.post("/api/v1/captures", data={"capture": (io.BytesIO(data[1:]), name), "org": "acme"},
                           headers={"X-CSRF-Token": token}, content_type="multipart/form-data")
        assert resp.status_code in (200, 202, 400, 413), (resp.status_code, resp.get_data()[:300])
        for p in folder.iterdir():
            assert re.fullmatch(r"[0-9a-f]{64}\.(pcap|pcapng)", p.name), p.name

    return one


# ---------------------------------------------------------------- parent: run every target, gather the figures


def run(target: str, seconds: int) -> dict[str, object]:
    corpus = OUT / "corpus" / target.replace(":", "-")
    crashes = OUT / "crashes" / target.replace(":", "-")
    crashes.mkdir(parents=True, exist_ok=True)
    write_seeds(target, corpus)
    before = set(crashes.iterdir())
    cmd = [sys.executable, "-m", "tests.fuzz.run_atheris", "--child", target, "--",
           f"-max_total_time={seconds}", f"-artifact_prefix={crashes}/", "-rss_limit_mb=2048", "-timeout=20",
           "-print_final_stats=1", str(corpus)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, errors="replace")
    log = proc.stdout + proc.stderr
    runs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", log) or re.findall(r"Done (\d+) runs", log)
    found = sorted(str(p.relative_to(REPO)) for p in set(crashes.iterdir()) - before)
    (OUT / "logs").mkdir(parents=True, exist_ok=True)
    (OUT / "logs" / f"{target.replace(':', '-')}.log").write_text(log)
    return {"target": target, "inputs": int(runs[-1]) if runs else 0, "exit": proc.returncode, "crashes": found}


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if args[:1] == ["--child"]:
        child(args[1], args[3:] if args[2:3] == ["--"] else args[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", "60")), help="per target")
    parser.add_argument("targets", nargs="*", help="default: every target")
    ns = parser.parse_args(args)
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("atheris is not installed: pip install -e '.[fuzz]'", file=sys.stderr)
        return 2
    results = []
    for target in ns.targets or all_targets():
        r = run(target, ns.seconds)
        results.append(r)
        mark = "CRASH " + ", ".join(r["crashes"]) if r["crashes"] or r["exit"] else "ok"  # type: ignore[arg-type]
        print(f"{target:20} {r['inputs']:>10,} inputs in {ns.seconds}s  {mark}", flush=True)
    total = sum(int(r["inputs"]) for r in results)  # type: ignore[call-overload]
    bad = [r for r in results if r["crashes"] or r["exit"]]
    print(f"{len(results)} targets, {total:,} inputs, {len(bad)} with crashes (logs in {OUT / 'logs'})")
    (OUT / "atheris-summary.json").write_text(json.dumps({"seconds_per_target": ns.seconds, "results": results}, indent=2) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
