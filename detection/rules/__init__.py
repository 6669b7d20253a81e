"""Rule files: model, loader (strict YAML + JSON Schema + semantic checks) and lint."""

from .lint import lint
from .loader import DEFAULT_LISTS, RULES_DIR, check_rules, load_lists, load_rules
from .model import Condition, ListRef, NamedList, NewTerms, Rule, RuleSet, Suppress, Threshold

__all__ = [
    "DEFAULT_LISTS",
    "RULES_DIR",
    "Condition",
    "ListRef",
    "NamedList",
    "NewTerms",
    "Rule",
    "RuleSet",
    "Suppress",
    "Threshold",
    "check_rules",
    "lint",
    "load_lists",
    "load_rules",
]
