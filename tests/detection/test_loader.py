"""Rule loader: strict YAML, JSON Schema, semantic checks; every problem with its exact file:line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from detection.exceptions import DetectionError, RuleError, RuleLoadError
from detection.rules import ListRef, check_rules, lint, load_lists, load_rules
from detection.rules.lint import format_errors, main

Write = Callable[[str, str], Path]

BAD_A = """
id: qn-test-0001
title: A
level: high
attack: [T0855, T0999]
match:
  event.dataset: modbus
  sourc.ip: 10.0.0.1
  source.ip|sameas: 1
  destination.ip|in: $nope
  modbus.function_name|re: "(unclosed"
  source.ip|cidr: [10.0.0.0/33]
level: low
"""

BAD_B = """
id: qn-test-0001
title: B
level: medium
match: {event.dataset: modbus}
threshold: {count: 3, window: 10 sec}
colour: red
"""


def _by_place(errors: list[RuleError]) -> list[tuple[str, int, str]]:
    return [(Path(e.path).name, e.line, e.message) for e in errors]


def test_every_problem_reported_at_once_with_file_and_line(write: Write, tmp_path: Path) -> None:
    lists = write("lists.yml", "engineering_stations: [10.10.1.20]\n")
    a = write("rules/a.yml", BAD_A)
    b = write("rules/b.yml", BAD_B)
    errors = lint([tmp_path / "rules"], default_lists=lists)
    got = _by_place(errors)
    expected = [
        ("a.yml", 4, "unknown ATT&CK for ICS technique 'T0999'"),
        ("a.yml", 7, "unknown field 'sourc.ip'; did you mean 'source.ip'?"),
        ("a.yml", 8, "unknown modifier 'sameas'"),
        ("a.yml", 9, "list $nope is not defined"),
        ("a.yml", 10, "bad regular expression '(unclosed'"),
        ("a.yml", 11, "bad CIDR '10.0.0.0/33'"),
        ("a.yml", 12, "duplicate key 'level' (first at line 3)"),
        ("b.yml", 1, "duplicate rule id 'qn-test-0001', first defined at " + f"{a}:1"),
        ("b.yml", 5, "threshold.window: bad duration '10 sec'"),
        ("b.yml", 6, "unknown key 'colour'"),
    ]
    assert len(got) == len(expected), format_errors(errors)
    for (name, line, msg), (ename, eline, emsg) in zip(got, expected):
        assert (name, line) == (ename, eline), format_errors(errors)
        assert emsg in msg, (msg, emsg)
    assert all(str(e).startswith(f"{e.path}:{e.line}: ") for e in errors)
    assert str(errors[0]) == f"{a}:4: {errors[0].message}"
    assert b.name == "b.yml"


def test_load_rules_raises_with_all_errors(write: Write, tmp_path: Path) -> None:
    lists = write("lists.yml", "x: [1]\n")
    write("rules/a.yml", BAD_A)
    with pytest.raises(RuleLoadError) as info:
        load_rules([tmp_path / "rules"], default_lists=lists)
    assert len(info.value.errors) == 7
    assert isinstance(info.value, DetectionError)
    assert "a.yml:12: duplicate key 'level'" in str(info.value)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("id: r-1\ntitle: t\nlevel: hgh\nmatch: {event.dataset: modbus}\n", 3, "level: 'hgh' is not one of"),
        ("id: r-1\ntitle: t\nlevel: low\n", 1, "'match' is a required property"),
        ("id: r-1\ntitle: t\nlevel: low\nmatch:\n  source.ip|gt: abc\n", 5, "'source.ip|gt' takes a number"),
        ("id: r-1\ntitle: t\nlevel: low\nmatch:\n  modbus.address|range: [9, 1]\n", 5, "low <= high"),
        ("id: r-1\ntitle: t\nlevel: low\nmatch:\n  source.ip|exists: maybe\n", 5, "takes true or false"),
        ("id: r-1\ntitle: t\nlevel: low\nmatch:\n  source.ip|in|x: [1]\n", 5, "one modifier per key"),
        ("id: r-1\ntitle: t\nlevel: low\nmatch:\n  source.ip: {a: 1}\n", 5, "takes a value or a non-empty list"),
        ("id: r-1\ntitle: t\nlevel: low\nmatch: {event.dataset: x}\nsuppress: {window: 5x}\n", 5, "bad duration '5x'"),
        ("id: r-1\ntitle: t\nlevel: low\nmatch: {event.dataset: x}\nmessage: 'from {source.addr}'\n", 5, "unknown field 'source.addr'"),
        (
            "id: r-1\ntitle: t\nlevel: low\nmatch: {event.dataset: x}\nthreshold: {count: 1, window: 1s}\n"
            "new_terms: {fields: [source.ip], learn: 1s}\n",
            6,
            "either threshold or new_terms",
        ),
        ("id: r-1\ntitle: t\nlevel: low\nmatch: {event.dataset: x}\nthreshold: {count: 1, window: 1s, by: [sorce.ip]}\n", 5, "unknown field 'sorce.ip'"),
        ("id: r-1\ntitle: [t\n", 3, "(opened at line 2)"),
        ("", 1, "empty rule file"),
        ("- a\n- b\n", 1, "one mapping"),
        ("id: r-1\n---\nid: r-2\n", 2, "not valid YAML"),
    ],
)
def test_single_problem_located(write: Write, text: str, line: int, fragment: str) -> None:
    path = write("r.yml", text)
    errors = lint([path], default_lists=None)
    assert [e.line for e in errors] == [line], format_errors(errors)
    assert fragment in errors[0].message
    assert errors[0].path == str(path)


def test_bad_cidr_in_a_named_list_is_reported_in_the_lists_file(write: Write) -> None:
    lists = write("lists.yml", "control_network:\n  - 10.10.1.0/24\n  - 10.10.300.0/24\n")
    path = write("r.yml", "id: r-1\ntitle: t\nlevel: low\nmatch:\n  source.ip|not_cidr: $control_network\n")
    errors = lint([path], default_lists=lists)
    assert _by_place(errors) == [("lists.yml", 3, errors[0].message)]
    assert "bad CIDR '10.10.300.0/24'" in errors[0].message


def test_lists_file_problems(write: Write) -> None:
    lists = write("lists.yml", "a: [1, 2]\nb: 3\na: [4]\n'bad name': [1]\nc: [[1]]\n")
    found, errors = load_lists([lists])
    assert [(e.line, e.message.split(" (")[0].split(";")[0]) for e in errors] == [
        (3, "duplicate key 'a'"),
        (2, "list 'b' must be a YAML list, not int"),
        (4, "bad list name 'bad name'"),
        (5, "list 'c': item [1] is not a string or number"),
    ]
    assert found["a"].values == (4,)  # last wins once reported


def test_site_lists_override_defaults_by_name(write: Write) -> None:
    defaults = write("lists.yml", "engineering_stations: [10.10.1.20]\nmodbus_masters: [10.10.1.10]\n")
    site = write("site.yml", "engineering_stations: [192.168.5.5, 192.168.5.6]\n")
    rule = write("r.yml", "id: r-1\ntitle: t\nlevel: low\nmatch:\n  source.ip|not_in: $engineering_stations\n")
    rs = load_rules([rule], site, default_lists=defaults)
    assert rs.lists["engineering_stations"].values == ("192.168.5.5", "192.168.5.6")
    assert rs.lists["modbus_masters"].values == ("10.10.1.10",)
    assert rs.lists["engineering_stations"].path == str(site)


def test_valid_rule_builds_model(write: Write) -> None:
    lists = write("lists.yml", "engineering_stations: [10.10.1.20]\n")
    path = write(
        "modbus/x.yml",
        """
        id: qn-modbus-9001
        title: Write from elsewhere
        description: d
        level: critical
        attack: [T0855, T0836]
        match:
          - event.dataset: modbus
            source.ip|not_in: $engineering_stations
          - event.dataset: [modbus, s7comm]
            modbus.address|range: [100, 109]
        threshold: {count: 5, window: 1m, by: source.ip, distinct: modbus.address}
        suppress: {window: 500ms}
        message: "{source.ip} wrote {count}"
        """,
    )
    rs = load_rules([path.parent], default_lists=lists)
    (rule,) = rs.rules
    assert rule.id == "qn-modbus-9001" and rule.ruleset == "qinling-modbus"
    assert rule.severity == 99 and rule.level == "critical"
    assert rule.attack_names == ("Unauthorized Command Message", "Modify Parameter")
    assert len(rule.match) == 2
    first = rule.match[0][1]
    assert (first.field, first.modifier, first.value, first.line) == ("source.ip", "not_in", ListRef("engineering_stations"), 8)
    assert rule.match[1][0].value == ("modbus", "s7comm")
    assert rule.threshold is not None and rule.threshold.window == 60.0 and rule.threshold.by == ("source.ip",)
    assert rule.suppress is not None and rule.suppress.window == 0.5 and rule.suppress.by == ()
    assert rule.location == f"{path}:1"


def test_check_rules_returns_ruleset_or_errors(write: Write) -> None:
    ok = write("ok.yml", "id: r-1\ntitle: t\nlevel: low\nmatch: {event.dataset: modbus}\n")
    rs, errors = check_rules([ok], default_lists=None)
    assert errors == [] and rs is not None and len(rs) == 1
    rs, errors = check_rules([ok, write("missing/../nothere.yml", "")], default_lists=None)
    assert rs is None and len(errors) == 1


def test_unreadable_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    errors = lint([tmp_path / "absent.yml"], default_lists=None)
    assert len(errors) == 1 and errors[0].line == 0 and "cannot read rule file" in errors[0].message


def test_lint_main_prints_path_line_message(write: Write, capsys: pytest.CaptureFixture[str]) -> None:
    path = write("r.yml", "id: r-1\ntitle: t\nlevel: low\nmatch:\n  nope.field: 1\n")
    import io

    out = io.StringIO()
    assert main([str(path)], out=out) == 1
    assert out.getvalue().startswith(f"{path}:5: unknown field 'nope.field'")


def test_bundled_pack_lints_clean() -> None:
    assert lint() == []


def test_regex_from_a_named_list_is_resolved_and_checked(tmp_path: Path) -> None:
    """`re: $name` takes its patterns from the lists file; a bad pattern there is reported at the rule."""
    from detection.engine import DetectionEngine
    from detection.rules.lint import lint
    from detection.rules.loader import load_rules
    from pipeline import schema as s

    lists = tmp_path / "lists.yml"
    lists.write_text("topics:\n  - '/cmd$'\n  - '^plant/.*/set$'\n")
    rule = tmp_path / "r.yml"
    rule.write_text(
        "id: qn-test-0001\ntitle: t\nlevel: high\nattack: [T0855]\nmatch:\n"
        "  event.dataset: mqtt\n  mqtt.topic|re: $topics\n"
    )
    rs = load_rules([rule], lists)
    engine = DetectionEngine(rs.rules, rs.lists)

    def ev(topic: str, n: int) -> s.Event:
        return s.Event(
            timestamp=s.ts(1000 + n),
            event=s.EventInfo(kind="event", dataset="mqtt", action="publish", id=f"t-{n}"),
            mqtt=s.Mqtt(message_type=3, message_type_name="publish", topic=topic),
        )

    assert engine.process(ev("plant/line1/set", 1)) and engine.process(ev("a/cmd", 2))
    assert engine.process(ev("plant/line1/status", 3)) == []
    lists.write_text("topics:\n  - '(unclosed'\n")
    problems = [str(e) for e in lint([rule], site_lists=lists)]
    assert any(f"{rule}:7" in p and "in list $topics" in p for p in problems), problems


# ---------------------------------------------------------------- parsed-rule cache


def test_cached_rule_set_is_the_parsed_one_and_a_bad_edit_still_gives_file_line(
    write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from detection.rules import loader

    cache = tmp_path / "cache"
    monkeypatch.setenv(loader.CACHE_ENV, str(cache))
    lists = write("lists.yml", "engineering_stations: [10.10.1.20]\n")
    rule = write("rules/r.yml", "id: r-1\ntitle: t\nlevel: low\nmatch: {event.dataset: modbus, source.ip|in: $engineering_stations}\n")
    parsed = load_rules([rule.parent], default_lists=lists)
    assert len(list(cache.glob("*.pickle"))) == 1
    # A second load reads the entry: no YAML is parsed at all.
    with monkeypatch.context() as m:
        m.setattr(loader, "read_yaml", lambda *a, **k: pytest.fail("parsed although cached"))
        cached = load_rules([rule.parent], default_lists=lists)
    assert cached == parsed and cached.rules[0].location == f"{rule}:1"
    # An edit (even one that keeps the size) is a different key: problems are found by a parse, at their line.
    rule.write_text("id: r-1\ntitle: t\nlevel: low\nmatch: {event.dataset: modbus, source.ip|in: $engineering_statiox}\n")
    with pytest.raises(RuleLoadError) as e:
        load_rules([rule.parent], default_lists=lists)
    assert [(err.path, err.line) for err in e.value.errors] == [(str(rule), 4)]
    assert "$engineering_statiox is not defined" in str(e.value)
    # So does an edit of the lists file the rules refer to.
    rule.write_text("id: r-1\ntitle: t\nlevel: low\nmatch: {event.dataset: modbus, source.ip|in: $engineering_stations}\n")
    assert load_rules([rule.parent], default_lists=lists) == parsed
    lists.write_text("plc: [10.10.1.20]\n")
    with pytest.raises(RuleLoadError, match=r"r\.yml:4: .*engineering_stations"):
        load_rules([rule.parent], default_lists=lists)


def test_unusable_cache_falls_back_to_parsing(write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from detection.rules import loader

    rule = write("r.yml", "id: r-1\ntitle: t\nlevel: low\nmatch: {event.dataset: modbus}\n")
    cache = tmp_path / "cache"
    monkeypatch.setenv(loader.CACHE_ENV, str(cache))
    first = load_rules([rule], default_lists=None)
    (entry,) = cache.glob("*.pickle")
    entry.write_bytes(b"not a pickle")  # truncated or foreign: parsed again, and rewritten
    assert load_rules([rule], default_lists=None) == first
    assert entry.read_bytes() != b"not a pickle"
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    monkeypatch.setenv(loader.CACHE_ENV, str(blocked))  # cannot be written: parsed, no error
    assert load_rules([rule], default_lists=None) == first


def test_bundled_pack_from_cache_equals_a_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from detection.rules import loader

    monkeypatch.setenv(loader.CACHE_ENV, "0")
    parsed = load_rules()
    monkeypatch.setenv(loader.CACHE_ENV, str(tmp_path))
    load_rules()
    assert load_rules() == parsed and len(list(tmp_path.glob("*.pickle"))) == 1
