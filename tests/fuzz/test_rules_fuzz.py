"""The rule loader (detection/rules) fed random YAML, random documents and mutated real rule files: a rule set,
or errors that each say `file:line: message`; never a traceback."""

from __future__ import annotations

import json
import random

import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz import targets
from tests.fuzz.strategies import budget

SEEDS = targets.rule_seeds()
TEXTS = [text for _name, text in SEEDS]
YAML_BITS = ("&a", "*a", "<<: *a", "!!python/object:os.system", "!!binary", "? ", "- ", ": ", "|", ">", "{", "}", "[", "]",
             "'", '"', "#", "%YAML 1.1", "---", "...", "\t", "\x00", "\ufeff", "~", ".inf", "0x1F", "2024-01-01", "\u202e",
             "id: x", "match:", "  event.dataset|re: '('", "threshold:", "  window: -1s", "$missing_list")
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30))
documents = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=12)


@st.composite
def mutated_rule_text(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(TEXTS)).splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("delete", "duplicate", "indent", "insert", "cut", "swap")))
        if not lines:
            lines = [""]
        i = draw(st.integers(0, len(lines) - 1))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "indent":
            lines[i] = draw(st.sampled_from(("  ", "\t", " "))) + lines[i] if draw(st.booleans()) else lines[i].lstrip()
        elif op == "insert":
            line = lines[i]
            j = draw(st.integers(0, len(line)))
            lines[i] = line[:j] + draw(st.sampled_from(YAML_BITS)) + line[j:]
        elif op == "cut":
            text = "".join(lines)
            lines = text[: draw(st.integers(0, len(text)))].splitlines(keepends=True)
        else:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
    return "".join(lines)


@st.composite
def mutated_rule_document(draw: st.DrawFn) -> str:
    """A real rule, parsed, with one value replaced by an arbitrary document: reaches the schema and semantic checks."""
    doc = yaml.safe_load(draw(st.sampled_from(TEXTS)))
    node = doc
    path = []
    while isinstance(node, dict) and node and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(node, key=str)))
        path.append(key)
        node = node[key]
    target = doc
    for key in path[:-1]:
        target = target[key]
    if path:
        target[path[-1]] = draw(documents)
    else:
        doc[draw(st.text(max_size=10))] = draw(documents)
    return yaml.safe_dump(doc, allow_unicode=True)


@budget(200)
@given(mutated_rule_text())
def test_mutated_rule_files(tmp_path_factory, text: str) -> None:  # type: ignore[no-untyped-def]
    targets.rule_file(text, str(tmp_path_factory.mktemp("rules")))


@budget(150)
@given(mutated_rule_document())
def test_real_rules_with_a_value_replaced(tmp_path_factory, text: str) -> None:  # type: ignore[no-untyped-def]
    targets.rule_file(text, str(tmp_path_factory.mktemp("rules")))


@budget(100)
@given(st.one_of(documents.map(lambda d: yaml.safe_dump(d, allow_unicode=True)), documents.map(json.dumps)))
def test_random_documents(tmp_path_factory, text: str) -> None:  # type: ignore[no-untyped-def]
    targets.rule_file(text, str(tmp_path_factory.mktemp("rules")))


@budget(100)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_random_bytes_and_text(tmp_path_factory, data: bytes | str) -> None:  # type: ignore[no-untyped-def]
    targets.rule_file(data, str(tmp_path_factory.mktemp("rules")))


def test_every_bundled_rule_loads_cleanly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert len(SEEDS) >= 20
    for name, text in SEEDS:
        assert targets.rule_file(text, str(tmp_path)) == [], name


# ---------------------------------------------------------------- regressions found by fuzzing


def test_recursive_alias_is_an_error_with_its_line_not_a_recursion_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Found by the rule fuzzer: `_index` walked the self-referencing list until RecursionError.
    errors = targets.rule_file("id: qn-x\nmatch: &m [*m]\n", str(tmp_path))
    assert [(e.line, e.message) for e in errors] == [(2, "not valid YAML: aliases (*name) are not allowed here; write the value out")]


def test_alias_bomb_is_refused_before_it_is_walked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]  # 10**9 leaves when walked
    errors = targets.rule_file("\n".join(levels) + "\n", str(tmp_path))
    assert len(errors) == 1 and errors[0].line == 2 and "aliases" in errors[0].message


def test_random_seeded_mutations_do_not_depend_on_hypothesis(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A fixed-seed pass over every rule file with each YAML fragment inserted at a random place."""
    rnd = random.Random(9)
    for _name, text in SEEDS[:10]:
        for bit in YAML_BITS:
            i = rnd.randrange(len(text) + 1)
            targets.rule_file(text[:i] + bit + text[i:], str(tmp_path))
