"""`qinling decode` on every capture of the shared corpus finishes cleanly, whatever the capture holds."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from sensors.engine import DecodeReport, decode_file
from sensors.exceptions import CaptureFileError

EXTENSIONS = (".pcap", ".pcapng", ".cap")


def test_every_corpus_capture_decodes_without_a_decoder_error(shared_dir: Path) -> None:
    captures = sorted(p for p in (shared_dir / "corpus").rglob("*") if p.suffix in EXTENSIONS and p.is_file())
    assert len(captures) > 400
    problems: list[str] = []
    datasets: Counter[str] = Counter()
    refused = 0
    for path in captures:
        report = DecodeReport()
        try:
            for ev in decode_file(path, report=report):
                datasets[ev.event.dataset] += 1
                if ev.anomaly is not None and ev.anomaly.code == "decoder_error":
                    problems.append(f"{path.relative_to(shared_dir)} frame {ev.evidence.frame if ev.evidence else '?'}: {ev.anomaly.message}")
        except CaptureFileError as e:  # empty files (0 packets) and non-captures are refused with a message
            refused += 1
            assert str(path.name) in str(e) and "capture" in str(e).lower()
        except Exception as e:  # pragma: no cover - the point of the test
            pytest.fail(f"{path}: {type(e).__name__}: {e}")
        assert report.decoder_errors == 0 or problems
    print(f"\n{len(captures)} captures, {refused} refused with a message, events by dataset: {dict(datasets.most_common())}")
    assert not problems, "\n".join(problems[:20])
    for proto in ("modbus", "dnp3", "s7comm", "iec104", "enip", "cip_io", "opcua", "bacnet", "mqtt", "flow"):
        assert datasets[proto] > 0, proto
