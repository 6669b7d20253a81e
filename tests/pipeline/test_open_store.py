"""Store URLs: SQLAlchemy's sqlite convention, and a clear error for anything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.exceptions import StoreError
from pipeline.store import Query, open_store


def test_three_slashes_is_relative_four_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rel").mkdir()
    open_store("sqlite:///rel/x.sqlite").close()
    assert (tmp_path / "rel" / "x.sqlite").exists()
    absolute = tmp_path / "abs.sqlite"
    open_store(f"sqlite:///{absolute}").close()  # absolute already starts with "/"
    assert absolute.exists()


def test_memory_store_answers_queries() -> None:
    s = open_store("sqlite://")
    assert s.search("alerts", Query()).total == 0


def test_unknown_scheme_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="unknown store URL 'mysql://x'"):
        open_store("mysql://x")
