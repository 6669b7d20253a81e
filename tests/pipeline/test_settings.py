"""Settings: defaults < TOML < QINLING_* variables < explicit overrides; clear errors; secrets redacted."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.exceptions import SettingsError
from pipeline.settings import Settings, load


def test_precedence(tmp_path: Path) -> None:
    f = tmp_path / "q.toml"
    f.write_text('[qinling]\norganization_id = "plant-7"\npage_size = 20\nstore = "sqlite:///a.db"\n')
    s = load(f, env={"QINLING_PAGE_SIZE": "30"}, store="sqlite:///b.db")
    assert (s.organization_id, s.page_size, s.store) == ("plant-7", 30, "sqlite:///b.db")
    assert load(env={}) == Settings()


def test_errors_name_the_file_and_the_key(tmp_path: Path) -> None:
    f = tmp_path / "q.toml"
    f.write_text("[qinling]\norganisation = 1\n")
    with pytest.raises(SettingsError, match=r"q\.toml: unknown setting 'organisation'"):
        load(f, env={})
    f.write_text("[qinling\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load(f, env={})
    with pytest.raises(SettingsError, match="QINLING_PAGE_SIZE"):
        load(env={"QINLING_PAGE_SIZE": "many"})


def test_secret_is_redacted() -> None:
    assert load(env={"QINLING_SECRET_KEY": "s3cret"}).redacted()["secret_key"] == "***"


def test_every_setting_is_documented(repo_root: Path) -> None:
    doc = (repo_root / "docs" / "settings.md").read_text(encoding="utf-8")
    for name in Settings.__dataclass_fields__:
        assert f"`{name}`" in doc, f"docs/settings.md does not document {name}"


def test_kafka_producer_compresses_with_lz4() -> None:
    """lz4 is a dependency, so the Kafka bus compresses batches by default (kafka-python's other
    built-in codec, gzip, costs far more CPU)."""
    from pipeline.kafka_bus import default_compression

    assert default_compression() == "lz4"
