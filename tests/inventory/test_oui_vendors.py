"""OUI table (Wireshark manuf) and vendor normalisation to one canonical name with a Chinese display name."""

from __future__ import annotations

from pathlib import Path

import pytest

from detection.exceptions import InventoryError
from detection.inventory.oui import DEFAULT_MANUF, load_oui, parse_manuf
from detection.inventory.vendors import normalize_vendor, vendor_from_model

MANUF = """# comment
00:1C:47\tHangzhou\tHangzhou Hollysys Automation Co., Ltd
00:0E:8C\tSiemens\tSiemens AG,
70:B3:D5\tIEEERegi\tIEEE Registration Authority
70:B3:D5:F2:60:00/36\tXjElectr\tXj Electric Co., Ltd.
BC:34:CA\tInovance
"""


def test_manuf_longest_prefix_and_short_names() -> None:
    t = parse_manuf(MANUF)
    assert len(t) == 5
    assert t.lookup("00:1c:47:aa:bb:cc").name == "Hangzhou Hollysys Automation Co., Ltd"  # type: ignore[union-attr]
    assert t.lookup("00-0E-8C-01-02-03").name == "Siemens AG"  # type: ignore[union-attr]
    assert t.lookup("70:b3:d5:f2:60:11").name == "Xj Electric Co., Ltd."  # type: ignore[union-attr]  # /36 beats /24
    assert t.lookup("70:b3:d5:00:00:01").name == "IEEE Registration Authority"  # type: ignore[union-attr]
    assert t.lookup("bc:34:ca:00:00:01").name == "Inovance"  # type: ignore[union-attr]
    assert t.lookup("00:00:00:00:00:00") is None and t.lookup("01:1c:47:00:00:00") is None and t.lookup("bogus") is None


def test_missing_manuf_fails_with_the_package_to_install(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="libwireshark-data"):
        load_oui(tmp_path / "nope")


def test_system_manuf_knows_chinese_ics_vendors() -> None:
    if not DEFAULT_MANUF.exists():
        pytest.skip("libwireshark-data not installed")
    t = load_oui()
    for mac, key, zh in (("00:1c:47:00:00:01", "hollysys", "和利时"), ("64:e7:38:00:00:01", "supcon", "中控技术"),
                         ("bc:34:ca:00:00:01", "inovance", "汇川技术"), ("1c:00:42:00:00:01", "nari", "南瑞")):
        e = t.lookup(mac)
        assert e is not None, mac
        v = normalize_vendor(e.name)
        assert v is not None and (v.key, v.name_zh) == (key, zh), (mac, e.name)


def test_cached_table_answers_as_the_parsed_one_and_follows_edits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from detection.inventory import oui

    monkeypatch.setenv(oui.CACHE_ENV, str(tmp_path / "cache"))
    manuf = tmp_path / "manuf"
    manuf.write_text(MANUF)
    oui._load.cache_clear()
    parsed = load_oui(manuf)
    assert len(list((tmp_path / "cache").glob("*.pickle"))) == 1
    oui._load.cache_clear()
    with monkeypatch.context() as m:  # the second process start reads the entry, parses nothing
        m.setattr(oui, "parse_manuf", lambda *a, **k: pytest.fail("parsed although cached"))
        cached = load_oui(manuf)
    macs = ("00:1c:47:aa:bb:cc", "70:b3:d5:f2:60:11", "70:b3:d5:00:00:01", "bc:34:ca:00:00:01", "00:00:00:00:00:00", "bogus")
    assert len(cached) == len(parsed) == 5 and [cached.lookup(x) for x in macs] == [parsed.lookup(x) for x in macs]
    manuf.write_text(MANUF + "00:1C:48\tOther\tOther Co\n")  # another size and mtime: parsed again
    oui._load.cache_clear()
    assert len(load_oui(manuf)) == 6 and load_oui(manuf).lookup("00:1c:48:00:00:01").name == "Other Co"  # type: ignore[union-attr]
    oui._load.cache_clear()


@pytest.mark.parametrize(("text", "key", "zh"), [
    ("Rockwell Automation/Allen-Bradley", "rockwell", "罗克韦尔自动化"),
    ("Rockwell Automation ", "rockwell", "罗克韦尔自动化"),
    ("General Electric (GE)", "ge", "通用电气"),
    ("Schneider Electric Software, LLC", "schneider", "施耐德电气"),
    ("Siemens Schweiz AG", "siemens", "西门子"),
    ("Mitsubishi Electric Corporation", "mitsubishi", "三菱电机"),
    ("Nari", "nari", "南瑞"),
    ("NARI Technology Co., Ltd.", "nari", "南瑞"),
    ("WellinTech", "wellintech", "亚控科技"),
    ("北京亚控科技发展有限公司", "wellintech", "亚控科技"),
    ("KingView", "wellintech", "亚控科技"),
    ("浙江中控技术股份有限公司", "supcon", "中控技术"),
    ("Hangzhou Hollysys Automation Co., Ltd", "hollysys", "和利时"),
    ("Shenzhen Inovance Technology", "inovance", "汇川技术"),
    ("Qinling Testbed", "qinling-testbed", "秦岭测试床"),
])
def test_vendor_aliases(text: str, key: str, zh: str) -> None:
    v = normalize_vendor(text)
    assert v is not None and (v.key, v.name_zh) == (key, zh)


def test_unknown_vendor_keeps_a_clean_name_and_lookalikes_do_not_match() -> None:
    assert normalize_vendor("Foo Bar Co., Ltd.").name == "Foo Bar"  # type: ignore[union-attr]
    assert normalize_vendor("wellink, Ltd.").key == "wellink"  # type: ignore[union-attr]  # not WellinTech
    assert normalize_vendor("Abbott").key == "abbott"  # type: ignore[union-attr]  # not ABB
    assert normalize_vendor("") is None and normalize_vendor(None) is None


def test_vendor_from_order_numbers() -> None:
    assert vendor_from_model("6ES7 315-2EH14-0AB0").key == "siemens"  # type: ignore[union-attr]
    assert vendor_from_model("1756-ENBT/A").key == "rockwell"  # type: ignore[union-attr]
    assert vendor_from_model("QN-PLC") is None
