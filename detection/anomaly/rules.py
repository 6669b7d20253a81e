"""The anomaly detectors' rule identities: one `Rule` per alert type, so anomaly alerts look like rule alerts."""

from __future__ import annotations

from pipeline.schema import SEVERITY

from ..engine import CompiledRule
from ..rules.model import Rule

RULESET = "qinling-anomaly"


def _rule(rid: str, title: str, level: str, attack: tuple[str, ...], names: tuple[str, ...], description: str) -> Rule:
    # `match` is empty: anomaly detectors decide themselves; the Rule only names and grades the alert.
    return Rule(id=rid, title=title, level=level, severity=SEVERITY[level], match=((),), attack=attack,
                attack_names=names, description=description, ruleset=RULESET, path="detection/anomaly/rules.py")


NEW_NODE = _rule("qn-anomaly-new-node", "New node on the control network", "high", ("T0848",), ("Rogue Master",),
                 "A host never seen during the learning phase sends or answers industrial protocol traffic.")
NEW_LINK = _rule("qn-anomaly-new-link", "New communication link", "high", ("T0848", "T0886"),
                 ("Rogue Master", "Remote Services"),
                 "A client/server pair (source → destination, protocol) not seen during the learning phase.")
NEW_FUNCTION = _rule("qn-anomaly-new-function", "New function on a known link", "medium", ("T0855", "T0888"),
                     ("Unauthorized Command Message", "Remote System Information Discovery"),
                     "A known master uses a function code / action it never used on this link while learning.")
NEW_ADDRESS = _rule("qn-anomaly-new-address", "Address outside the learned ranges", "medium", ("T0861", "T0801"),
                    ("Point & Tag Identification", "Monitor Process State"),
                    "A request touches registers/coils/objects outside the merged ranges learned for its link and function.")
POLL_STOPPED = _rule("qn-anomaly-poll-stopped", "Polling cycle stopped", "high", ("T0814", "T0815"),
                     ("Denial of Service", "Denial of View"),
                     "A cyclic request (master, slave, function) was not seen for k times its learned period.")
POLL_RATE = _rule("qn-anomaly-poll-rate", "Polling cycle sped up", "medium", ("T0806", "T0855"),
                  ("Brute Force I/O", "Unauthorized Command Message"),
                  "Recent gaps between requests of a cyclic exchange are far shorter than the learned period.")
POLL_JITTER = _rule("qn-anomaly-poll-jitter", "Polling cycle became irregular", "low", ("T0830",),
                    ("Adversary-in-the-Middle",),
                    "Recent gaps between requests of a cyclic exchange spread far beyond the learned jitter.")
VALUE = _rule("qn-anomaly-value", "Process value outside its learned envelope", "high", ("T0836", "T0831"),
              ("Modify Parameter", "Manipulation of Control"),
              "A register/point value (written or read back) outside the learned min/max or changing faster than learned.")
BINARY = _rule("qn-anomaly-binary", "Binary point changed unusually", "medium", ("T0831",), ("Manipulation of Control",),
               "A coil/binary point took a state never seen while learning, or toggles far more often than learned.")
MAC_BINDING = _rule("qn-anomaly-mac-binding", "IP address claimed by another MAC", "high", ("T0830",),
                    ("Adversary-in-the-Middle",),
                    "An IP address learned at one MAC is claimed (ARP) or used (IP frames) by another, or one MAC claims "
                    "the addresses of several known hosts: ARP cache poisoning, the usual way onto the path between an "
                    "HMI and its PLCs.")
MULTIVARIATE = _rule("qn-anomaly-multivariate", "Unusual traffic profile", "medium", ("T0801", "T0814"),
                     ("Monitor Process State", "Denial of Service"),
                     "A window of one flow's or asset's traffic features is an outlier for the site's learned model.")

RULES: tuple[Rule, ...] = (NEW_NODE, NEW_LINK, NEW_FUNCTION, NEW_ADDRESS, POLL_STOPPED, POLL_RATE, POLL_JITTER, VALUE,
                           BINARY, MAC_BINDING, MULTIVARIATE)
IDS: frozenset[str] = frozenset(r.id for r in RULES)


def compiled(rule: Rule) -> CompiledRule:
    return CompiledRule(rule, {})
