"""IEC 60870-5-104 code tables: type ids, causes of transmission, U-format functions, anomalies, actions."""

from __future__ import annotations

import enum
from typing import Final

from ..wire import name_of

START: Final = 0x68
MIN_LENGTH: Final = 4  # APCI length counts the 4 control octets at least
MAX_LENGTH: Final = 253  # IEC 60870-5-104 §5: APDU at most 255 octets, so length <= 253
ASDU_HEADER: Final = 6  # type id, VSQ, COT (2 octets), common address (2 octets)
IOA_LEN: Final = 3
MAX_PENDING: Final = 1000  # activations waiting for a confirmation, per connection

# Type identification (IEC 60870-5-101 §7.2.1 / -104 §8 table 1 and 2; 41-44, 81-95: IEC 62351-5).
TYPE_NAMES: Final[dict[int, str]] = {
    1: "M_SP_NA_1", 2: "M_SP_TA_1", 3: "M_DP_NA_1", 4: "M_DP_TA_1", 5: "M_ST_NA_1", 6: "M_ST_TA_1",
    7: "M_BO_NA_1", 8: "M_BO_TA_1", 9: "M_ME_NA_1", 10: "M_ME_TA_1", 11: "M_ME_NB_1", 12: "M_ME_TB_1",
    13: "M_ME_NC_1", 14: "M_ME_TC_1", 15: "M_IT_NA_1", 16: "M_IT_TA_1", 17: "M_EP_TA_1", 18: "M_EP_TB_1",
    19: "M_EP_TC_1", 20: "M_PS_NA_1", 21: "M_ME_ND_1",
    30: "M_SP_TB_1", 31: "M_DP_TB_1", 32: "M_ST_TB_1", 33: "M_BO_TB_1", 34: "M_ME_TD_1", 35: "M_ME_TE_1",
    36: "M_ME_TF_1", 37: "M_IT_TB_1", 38: "M_EP_TD_1", 39: "M_EP_TE_1", 40: "M_EP_TF_1",
    41: "S_IT_TC_1",
    45: "C_SC_NA_1", 46: "C_DC_NA_1", 47: "C_RC_NA_1", 48: "C_SE_NA_1", 49: "C_SE_NB_1", 50: "C_SE_NC_1",
    51: "C_BO_NA_1",
    58: "C_SC_TA_1", 59: "C_DC_TA_1", 60: "C_RC_TA_1", 61: "C_SE_TA_1", 62: "C_SE_TB_1", 63: "C_SE_TC_1",
    64: "C_BO_TA_1",
    70: "M_EI_NA_1",
    81: "S_CH_NA_1", 82: "S_RP_NA_1", 83: "S_AR_NA_1", 84: "S_KR_NA_1", 85: "S_KS_NA_1", 86: "S_KC_NA_1",
    87: "S_ER_NA_1", 90: "S_US_NA_1", 91: "S_UQ_NA_1", 92: "S_UR_NA_1", 93: "S_UK_NA_1", 94: "S_UA_NA_1",
    95: "S_UC_NA_1",
    100: "C_IC_NA_1", 101: "C_CI_NA_1", 102: "C_RD_NA_1", 103: "C_CS_NA_1", 104: "C_TS_NA_1",
    105: "C_RP_NA_1", 106: "C_CD_NA_1", 107: "C_TS_TA_1",
    110: "P_ME_NA_1", 111: "P_ME_NB_1", 112: "P_ME_NC_1", 113: "P_AC_NA_1",
    120: "F_FR_NA_1", 121: "F_SR_NA_1", 122: "F_SC_NA_1", 123: "F_LS_NA_1", 124: "F_AF_NA_1",
    125: "F_SG_NA_1", 126: "F_DR_TA_1", 127: "F_SC_NB_1",
}  # fmt: skip

COMMANDS: Final = frozenset(range(45, 52)) | frozenset(range(58, 65))  # process info, control direction
SET_POINTS: Final = frozenset({48, 49, 50, 61, 62, 63})
PARAMETERS: Final = frozenset({110, 111, 112, 113})
FILE_TYPES: Final = frozenset(range(120, 128))
SYSTEM_CONTROL: Final = frozenset(range(100, 108))

# Causes of transmission (IEC 60870-5-101 §7.2.3).
COT_NAMES: Final[dict[int, str]] = {
    1: "per_cyc", 2: "back", 3: "spont", 4: "init", 5: "req", 6: "act", 7: "actcon", 8: "deact",
    9: "deactcon", 10: "actterm", 11: "retrem", 12: "retloc", 13: "file", 20: "inrogen",
    **{20 + g: f"inro{g}" for g in range(1, 17)},
    37: "reqcogen", 38: "reqco1", 39: "reqco2", 40: "reqco3", 41: "reqco4",
    44: "unknown_type", 45: "unknown_cause", 46: "unknown_common_address", 47: "unknown_ioa",
}  # fmt: skip
COT_ACT, COT_ACTCON, COT_DEACT, COT_DEACTCON, COT_ACTTERM, COT_REQ = 6, 7, 8, 9, 10, 5
COT_REQUESTS: Final = frozenset({COT_ACT, COT_DEACT})
COT_CONFIRMATIONS: Final = frozenset({COT_ACTCON, COT_DEACTCON, COT_ACTTERM, 44, 45, 46, 47})

U_FUNCTIONS: Final[dict[int, str]] = {
    0x07: "startdt_act", 0x0B: "startdt_con", 0x13: "stopdt_act", 0x23: "stopdt_con",
    0x43: "testfr_act", 0x83: "testfr_con",
}  # fmt: skip

DPI_NAMES: Final = ("indeterminate_or_intermediate", "off", "on", "indeterminate")
DCS_NAMES: Final = ("not_permitted", "off", "on", "not_permitted")
RCS_NAMES: Final = ("not_permitted", "lower", "higher", "not_permitted")
QRP_NAMES: Final = {1: "general_reset", 2: "reset_time_tagged_events"}
COI_NAMES: Final = {0: "local_power_on", 1: "local_manual_reset", 2: "remote_reset"}
FRZ_NAMES: Final = ("read", "freeze", "freeze_and_reset", "reset")
KPA_NAMES: Final = {1: "threshold", 2: "smoothing_factor", 3: "low_limit", 4: "high_limit"}
QPA_NAMES: Final = {1: "act_deact_loaded_params", 2: "act_deact_object_param", 3: "act_deact_cyclic_transmission"}


class AnomalyCode(str, enum.Enum):
    """Every anomaly the IEC 104 decoder reports (`anomaly.code`); rules match these strings."""

    INVALID_START = "invalid_start"  # APDU does not begin with 0x68
    INVALID_LENGTH = "invalid_length"  # APCI length < 4 or > 253
    INVALID_APCI = "invalid_apci"  # U-format with no or several functions, S-format with an ASDU
    INVALID_ASDU = "invalid_asdu"  # ASDU shorter than its header, objects do not fit the length
    UNKNOWN_TYPE_ID = "unknown_type_id"  # type id not defined by the standard
    UNKNOWN_COT = "unknown_cot"  # cause of transmission not defined (0, 14-19, 42-43, 48-63)
    SEQUENCE_GAP = "sequence_gap"  # I-format N(S) is not the one expected
    UNSOLICITED_CONFIRMATION = "unsolicited_confirmation"  # actcon/actterm with no pending activation
    FLOODED = "flooded"  # more than MAX_PENDING activations without confirmation; oldest dropped
    TRUNCATED_PDU = "truncated_pdu"  # bytes lost or the connection ended inside an APDU
    NOT_IEC104 = "not_iec104"  # too many bad headers in a row: decoding of that direction stopped


def type_name(tid: int) -> str:
    return name_of(TYPE_NAMES, tid)


def cot_name(cot: int) -> str:
    return name_of(COT_NAMES, cot)


def info_direction(tid: int) -> str:
    """The standard's grouping of the type id: monitor (1-44, 70), control (45-69, 100-113), file (120-127)."""
    if tid in FILE_TYPES:
        return "file"
    if 45 <= tid <= 69 or 100 <= tid <= 119:
        return "control"
    return "monitor"


def action_of(tid: int, cot: int, select: bool | None, from_originator: bool) -> str:
    """event.action of an ASDU (see docs/protocols/iec104.md for the reasoning)."""
    if tid in COMMANDS:
        if select:
            return "select"
        return "write" if tid in SET_POINTS or tid in (51, 64) else "operate"
    if tid in (100, 101):
        return "interrogation"
    if tid == 102:
        return "read"
    if tid in (103, 106):
        return "time_sync"
    if tid in (104, 107):
        return "diagnostics"
    if tid == 105:
        return "restart"
    if tid in PARAMETERS:
        return "write"
    if tid in FILE_TYPES:
        if tid in (120, 121, 123, 125):  # file/section ready, last section, segment: sender has the file
            return "file_write" if from_originator else "file_read"
        if tid == 124:  # acknowledgement: sent by the receiver of the file
            return "file_read" if from_originator else "file_write"
        return "file_read"  # call/select (122), directory (126), query log (127)
    if tid in TYPE_NAMES and tid < 45 or tid == 70:
        if cot == COT_REQ:
            return "read"
        if 20 <= cot <= 41:
            return "interrogation"
        return "read_status"
    return "unknown"
