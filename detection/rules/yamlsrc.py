"""YAML reading for rule and lists files: duplicate keys rejected, every key and item located by line."""

from __future__ import annotations

import os
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..exceptions import RuleError

PathKey = tuple[str | int, ...]


class StrictSafeLoader(yaml.SafeLoader):
    """A SafeLoader that records duplicate mapping keys instead of silently keeping the last one.

    PyYAML's default is last-wins, which lets a copy-pasted `level:` quietly change a rule. Duplicates
    are collected (not raised) so one run reports every problem of a file.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[Any, int, int]] = []  # key, line, line of its first occurrence

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        # An alias can make the document recursive (`a: &x [*x]`) or exponentially large when walked
        # (nested aliases): rule and lists files are small enough to write every value out.
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed here; write the value out", mark)
        return super().compose_node(parent, index)  # type: ignore[no-any-return]

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Hashable, Any]:
        if isinstance(node, MappingNode):
            self.flatten_mapping(node)
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    continue  # the base constructor reports unhashable keys
                line = key_node.start_mark.line + 1
                if key in first:
                    self.duplicates.append((key, line, first[key]))
                else:
                    first[key] = line
        return super().construct_mapping(node, deep=deep)  # type: ignore[arg-type,no-any-return]


@dataclass
class YamlDoc:
    """One parsed YAML file: its data and the line of every mapping key and sequence item."""

    path: str
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line(self, path: PathKey) -> int:
        """Line of `path`, or of its nearest located ancestor (1 for the document)."""
        p = tuple(str(k) if not isinstance(k, int) else k for k in path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), 1)

    def error(self, path: PathKey, message: str) -> RuleError:
        return RuleError(self.path, self.line(path), message)


def _index(node: Node, path: PathKey, out: dict[PathKey, int]) -> None:
    if isinstance(node, MappingNode):
        for k, v in node.value:
            key: str | int = str(k.value) if isinstance(k, ScalarNode) else f"<{k.tag}>"
            p = path + (key,)
            out.setdefault(p, k.start_mark.line + 1)
            _index(v, p, out)
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            p = path + (i,)
            out[p] = item.start_mark.line + 1
            _index(item, p, out)


def read_yaml(path: str | os.PathLike[str], errors: list[RuleError], *, what: str = "rule") -> YamlDoc | None:
    """Parse one file; problems are appended to `errors`. None when nothing usable could be read."""
    spath = os.fspath(path)
    try:
        with open(spath, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        errors.append(RuleError(spath, 0, f"cannot read {what} file: {e.strerror or e}"))
        return None
    except UnicodeDecodeError as e:
        errors.append(RuleError(spath, 0, f"{what} file is not UTF-8: {e.reason}"))
        return None
    try:
        loader = StrictSafeLoader(text)  # checks every character first: a NUL or other control character fails here
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) + 1
        errors.append(RuleError(spath, line, f"not valid YAML: character {e.character!r} is not allowed; remove it"))
        return None
    try:
        node = loader.get_single_node()
        if node is None:
            errors.append(RuleError(spath, 1, f"empty {what} file"))
            return None
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else 0
        problem = " ".join(p for p in (e.context, e.problem) if p)
        if e.context_mark is not None and mark is not None and e.context_mark.line != mark.line:
            problem += f" (opened at line {e.context_mark.line + 1})"
        errors.append(RuleError(spath, line, f"not valid YAML: {problem}"))
        return None
    except yaml.YAMLError as e:
        errors.append(RuleError(spath, 0, f"not valid YAML: {e}"))
        return None
    finally:
        loader.dispose()
    for key, line, first in loader.duplicates:
        errors.append(RuleError(spath, line, f"duplicate key {key!r} (first at line {first}); keep one"))
    doc = YamlDoc(spath, data, {(): node.start_mark.line + 1})
    _index(node, (), doc.lines)
    return doc
