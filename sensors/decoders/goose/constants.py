"""GOOSE constants: ethertype, goosePdu tags, MMS Data tags, parse outcomes, sequence classes."""

from __future__ import annotations

from typing import Final

ETHERTYPE: Final = 0x88B8
MAX_VALUES: Final = 512  # allData elements decoded per frame (nested included); the rest counted in the hash only
MAX_DEPTH: Final = 8
MAX_PUBLISHERS: Final = 4096  # (APPID, gocbRef) sequence states kept; the oldest is dropped

# goosePdu [APPLICATION 1] members (IEC 61850-8-1 A.3), context-specific tags.
PDU_TAG: Final = 0x61
GOCB_REF, TAL, DAT_SET, GO_ID, T, ST_NUM, SQ_NUM, SIMULATION, CONF_REV, NDS_COM, NUM_ENTRIES, ALL_DATA, SECURITY = (
    0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0xAB, 0x8C,
)
# Members whose absence makes the PDU unusable (ICSNPP's "failed") vs. merely incomplete ("partial").
HARD_REQUIRED: Final = (GOCB_REF,)
SOFT_REQUIRED: Final = (TAL, DAT_SET, ST_NUM, SQ_NUM, SIMULATION, CONF_REV, NDS_COM, NUM_ENTRIES)

# MMS Data CHOICE tags (ISO 9506-2) as they appear in allData.
DATA_TYPES: Final = {
    0xA1: "array", 0xA2: "structure", 0x83: "boolean", 0x84: "bit_string", 0x85: "integer", 0x86: "unsigned",
    0x87: "float", 0x89: "octet_string", 0x8A: "visible_string", 0x8C: "binary_time", 0x8D: "bcd",
    0x8E: "boolean_array", 0x8F: "object_id", 0x90: "mms_string", 0x91: "utc_time",
}

# Parse outcomes (ICSNPP goose.log parse_status/parse_error).
OK, PARTIAL, FAILED = "ok", "partial", "failed"
TRUNCATED: Final = "truncated_packet"
MALFORMED: Final = "malformed_asn1"
MISSING_REQUIRED: Final = "missing_required_field"
MISSING_ALL_DATA: Final = "missing_all_data"
UNSUPPORTED_TLV: Final = "unsupported_tlv"

# Sequence classes of a frame against the previous one of the same publisher and control block.
FIRST, RETRANSMISSION, STATE_CHANGE = "first", "retransmission", "state_change"
ST_JUMP, ST_ROLLBACK, SQ_GAP, SQ_ROLLBACK, SAME_ST_DATA_CHANGED, RESTART, PUBLISHER_CHANGED = (
    "st_jump", "st_rollback", "sq_gap", "sq_rollback", "same_st_data_changed", "restart", "publisher_changed",
)
