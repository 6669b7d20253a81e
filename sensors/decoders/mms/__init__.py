"""MMS (ISO 9506) decoder: ISO session / presentation / ACSE unwrapping, MMS PDUs, request/answer pairing.

MMS shares TCP 102 with S7comm: the ISO transport flow (TPKT/COTP, in the s7comm package) dispatches
each COTP DT payload by its first byte (0x32 S7comm, 0x72 S7comm-plus, a session SPDU or an MMS PDU
tag -> `MmsSession`). The registration for port 102 is therefore the ISO transport flow's.
"""

from __future__ import annotations

from .constants import MAX_PENDING, AnomalyCode
from .parser import looks_like_mms, looks_like_session, parse_mms, parse_session
from .session import MmsSession, action_of

NAME = "mms"
DEFAULT_PORTS = (102,)

__all__ = ["NAME", "DEFAULT_PORTS", "MAX_PENDING", "AnomalyCode", "MmsSession", "action_of", "parse_mms", "parse_session", "looks_like_mms", "looks_like_session"]
