"""GOOSE decoder state: one event per frame, each publisher's stNum/sqNum followed to classify the frame."""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass

import msgspec

from pipeline.protocols.goose import Goose
from pipeline.schema import Anomaly, Event

from ..base import Direction, make_event
from ..ether import Envelopes, EtherFrame
from . import constants as c
from .parser import parse

log = logging.getLogger(__name__)
DATASET = "goose"
_U32 = 1 << 32


@dataclass(slots=True)
class _State:
    st_num: int
    sq_num: int
    data_hash: str | None
    t: str | None
    mac: str | None = None  # the publisher's source MAC


def classify(prev: _State | None, g: Goose, mac: str | None = None) -> str | None:
    """How this frame follows the previous one of its control block (APPID + gocbRef), sent by `mac`.

    IEC 61850-8-1 18.1: stNum counts state changes, sqNum retransmissions since; both wrap at 2^32,
    sqNum restarts at 0 (Edition 1: 1). A second source MAC for one control block is another
    publisher: an injector, or two IEDs configured alike.
    """
    if prev is not None and g.st_num is not None and g.sq_num is not None and mac is not None and prev.mac is not None and mac != prev.mac:
        return c.PUBLISHER_CHANGED
    return _follow(prev, g)


def _follow(prev: _State | None, g: Goose) -> str | None:
    st, sq = g.st_num, g.sq_num
    if st is None or sq is None:
        return None
    if prev is None:
        return c.FIRST
    if st == prev.st_num:
        if sq == (prev.sq_num + 1) % _U32:
            return c.SAME_ST_DATA_CHANGED if g.all_data_hash != prev.data_hash and g.all_data_hash and prev.data_hash else c.RETRANSMISSION
        if sq > prev.sq_num:
            return c.SQ_GAP
        if sq == prev.sq_num and g.all_data_hash == prev.data_hash and g.t == prev.t:
            return c.RETRANSMISSION  # the same frame twice (a capture on a mirror port sees duplicates)
        if st <= 1 and sq <= 1:
            return c.RESTART  # the publisher started over (stNum 1, sqNum 0/1)
        return c.SQ_ROLLBACK
    if st == (prev.st_num + 1) % _U32:
        return c.STATE_CHANGE
    if st <= 1 and sq <= 1:
        return c.RESTART
    if st > prev.st_num:
        return c.ST_JUMP
    return c.ST_ROLLBACK


class GooseDecoder:
    """Every GOOSE frame of a capture (a layer-2 decoder: see sensors/decoders/ether.py)."""

    def __init__(self) -> None:
        self._env = Envelopes()
        self._state: OrderedDict[tuple[int, str], _State] = OrderedDict()

    def feed(self, data: memoryview, frame: EtherFrame) -> list[Event]:
        meta = self._env.meta(frame, frame.src_mac, frame.dst_mac)
        try:
            g = parse(data)
            if g.gocb_ref is not None and g.parse_status != c.FAILED:
                key = (g.appid, g.gocb_ref)
                prev = self._state.get(key)
                seq = classify(prev, g, frame.src_mac)
                if seq is not None:
                    if prev is not None:
                        g = msgspec.structs.replace(g, sequence=seq, previous_st_num=prev.st_num, previous_sq_num=prev.sq_num)
                    else:
                        g = msgspec.structs.replace(g, sequence=seq)
                    self._remember(key, g, frame.src_mac)
            anomaly = None
            if g.parse_status != c.OK:
                anomaly = Anomaly(code=g.parse_error or g.parse_status, message=f"GOOSE PDU {g.parse_status}: {g.parse_error}")
            action = "anomaly" if g.parse_status == c.FAILED else "publish"
            return [make_event(meta, Direction.TO_SERVER, dataset=DATASET, action=action, anomaly=anomaly, goose=g)]
        except Exception as exc:  # a decoder never raises: a bug becomes an anomaly event
            log.debug("GOOSE decoder error on frame %s", frame.frame, exc_info=True)
            return [self._env.decoder_error(frame, DATASET, exc)]

    def _remember(self, key: tuple[int, str], g: Goose, mac: str | None = None) -> None:
        assert g.st_num is not None and g.sq_num is not None
        self._state[key] = _State(g.st_num, g.sq_num, g.all_data_hash, g.t, mac)
        self._state.move_to_end(key)
        if len(self._state) > c.MAX_PUBLISHERS:
            self._state.popitem(last=False)

    def close(self) -> list[Event]:
        self._state.clear()
        return []
