"""S7comm fields (`s7comm.*`) over TPKT/COTP; S7comm-plus is recognised under the same name."""

from __future__ import annotations

from .base import Fields


class S7comm(Fields):
    rosctr: int  # 1 job, 2 ack, 3 ack_data, 7 userdata
    rosctr_name: str
    function_code: int | None = None
    function_name: str | None = None
    pdu_reference: int | None = None
