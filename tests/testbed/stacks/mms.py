"""IEC 61850 MMS (ISO-TSAP, port 102) with libiec61850, the de-facto open IEC 61850 stack, through
its Python bindings ``pyiec61850-ng`` (module ``pyiec61850.pyiec61850``, a manylinux wheel):
``IedServer`` as the IED, ``IedConnection`` / ``MmsConnection`` for the HMI, the engineering
station and the attacker.

The IED's model is built at run time (no SCL file): IED ``QNIED``, one logical device ``PROT``
(MMS domain ``QNIEDPROT``) with

* ``LLN0``  Mod, Beh, Health (ENS), NamPlt (LPL)
* ``MMXU1`` TotW, Hz (MV, float; ``TotW.mag.f`` drifts every ``update_s`` seconds)
* ``PTOC1`` StrVal (ASG, setting: FC SP, ``StrVal.setMag.f``)
* ``CSWI1`` Pos (DPC, select-before-operate, normal security: select = read of ``Pos.SBO``)
* ``XCBR1`` Pos (DPC, direct control, normal security)

Its MMS Identify answer is ``identity(cfg)``: :data:`IDENTITY` (vendor, model, revision), each
overridable by the scenario's ``plcs`` entry; tests compare the inventory with this one source.
File services are enabled on a per-run directory holding two files (``COMTRADE/fault_0001.cfg``,
``settings.cid``).  ``associate`` opens the association only; a session reconnects once when
libiec61850 reports a fresh association lost (seen on a loaded machine).

Server config: ``seed``, ``update_s`` (0.5).  Client actions: ``identify``, ``get_name_list``
(``class``: domain | variable, ``domain``), ``read`` / ``write`` (``ref``, ``fc``, ``value``),
``get_variable_access_attributes`` (``domain``, ``item``), ``control`` (``ref`` of the DO,
``value``: bool, ``select``: true for SBO), ``file_directory``, ``file_open`` (open + close of
``file``), ``file_delete`` (``file``), ``conclude`` (release: MMS conclude, then TCP close) and
``abort``.

GOOSE: not published by this stack.  libiec61850's GoosePublisher does work inside a network
namespace (checked: ``pyiec61850.goose.GoosePublisher`` on a veth end in a namespace sent frames
that tshark decodes, including one with simulation=TRUE and stNum 1000), but the testbed's
labeller attributes frames to steps by the (ip, port) pairs agents report, and every non-IP
frame (ARP, GOOSE) becomes normal traffic: a GOOSE attack step would be labelled normal and its
alerts would count as false positives.  Agents would have to report their interface MAC and
tests/testbed/labels.py attribute Ethernet-only frames by source MAC.  GOOSE stays with the
crafted capture pcaps/goose/goose_plant_attack.pcap.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
from typing import Any

from .common import STOP, emit

PORT = 102
TRANSPORT = "tcp"

#: what the IED answers to MMS Identify (vendorName, modelName, revision): the single source for
#: the server and for the inventory identity test.
IDENTITY = {"vendor": "Qinling Testbed", "model": "QN-IED 61850 bay controller", "revision": "1.6.1"}


def identity(cfg: dict[str, Any]) -> dict[str, str]:
    """The Identify answer of the IED ``cfg`` configures: :data:`IDENTITY`, with ``vendor`` /
    ``model`` / ``revision`` overridden by the scenario's ``plcs`` entry where it sets them."""
    return {k: str(cfg.get(k, v)) for k, v in IDENTITY.items()}


IED_NAME = "QNIED"
LD_INST = "PROT"
DOMAIN = IED_NAME + LD_INST


def _iec() -> Any:
    import pyiec61850.pyiec61850 as iec

    return iec


def build_model(iec: Any) -> Any:
    model = iec.IedModel_create(IED_NAME)
    ld = iec.LogicalDevice_create(LD_INST, model)
    lln0 = iec.LogicalNode_create("LLN0", ld)
    for name in ("Mod", "Beh", "Health"):
        iec.CDC_ENS_create(name, iec.toModelNode(lln0), 0)
    iec.CDC_LPL_create("NamPlt", iec.toModelNode(lln0), 0)
    mmxu = iec.LogicalNode_create("MMXU1", ld)
    iec.CDC_MV_create("TotW", iec.toModelNode(mmxu), 0, False)
    iec.CDC_MV_create("Hz", iec.toModelNode(mmxu), 0, False)
    ptoc = iec.LogicalNode_create("PTOC1", ld)
    iec.CDC_ASG_create("StrVal", iec.toModelNode(ptoc), 0, False)
    cswi = iec.LogicalNode_create("CSWI1", ld)
    iec.CDC_DPC_create("Pos", iec.toModelNode(cswi), 0, iec.CDC_CTL_MODEL_SBO_NORMAL)
    xcbr = iec.LogicalNode_create("XCBR1", ld)
    iec.CDC_DPC_create("Pos", iec.toModelNode(xcbr), 0, iec.CDC_CTL_MODEL_DIRECT_NORMAL)
    return model


def _node(iec: Any, model: Any, ref: str) -> Any:
    node = iec.IedModel_getModelNodeByObjectReference(model, f"{DOMAIN}/{ref}")
    if node is None:
        raise KeyError(ref)
    return iec.toDataAttribute(node)


def serve(cfg: dict[str, Any]) -> int:
    iec = _iec()
    rng = random.Random(int(cfg.get("seed", 1)))
    files = tempfile.mkdtemp(prefix="qn-mms-files-")
    os.makedirs(os.path.join(files, "COMTRADE"))
    with open(os.path.join(files, "COMTRADE", "fault_0001.cfg"), "w") as f:
        f.write("QNIED,PROT,1999\n2,1A,1D\n")
    with open(os.path.join(files, "settings.cid"), "w") as f:
        f.write("<SCL><IED name=\"QNIED\"/></SCL>\n")
    model = build_model(iec)
    # IedServer_createWithConfig refuses a NULL TLS configuration in these bindings: the plain
    # server has MMS file services compiled in; the file store is set at run time.
    server = iec.IedServer_create(model)
    ident = identity(cfg)
    iec.IedServer_setServerIdentity(server, ident["vendor"], ident["model"], ident["revision"])
    iec.IedServer_setFilestoreBasepath(server, files + "/")
    iec.IedServer_setWriteAccessPolicy(server, iec.IEC61850_FC_SP, iec.ACCESS_POLICY_ALLOW)
    iec.IedServer_setWriteAccessPolicy(server, iec.IEC61850_FC_CF, iec.ACCESS_POLICY_ALLOW)
    iec.IedServer_setLocalIpAddress(server, cfg["bind"])
    totw = _node(iec, model, "MMXU1.TotW.mag.f")
    hz = _node(iec, model, "MMXU1.Hz.mag.f")
    strval = _node(iec, model, "PTOC1.StrVal.setMag.f")
    iec.IedServer_updateFloatAttributeValue(server, strval, 120.0)
    iec.IedServer_updateFloatAttributeValue(server, hz, 50.0)
    power = rng.uniform(800.0, 1200.0)
    iec.IedServer_updateFloatAttributeValue(server, totw, power)
    iec.IedServer_start(server, int(cfg["port"]))
    if not iec.IedServer_isRunning(server):
        raise OSError(f"libiec61850 IedServer did not start on {cfg['bind']}:{cfg['port']}")
    emit("listening", bind=cfg["bind"], port=int(cfg["port"]), stack="mms", domain=DOMAIN,
         **ident)
    period = float(cfg.get("update_s", 0.5))
    try:
        while not STOP.wait(period):
            power += rng.uniform(-5.0, 5.0)
            iec.IedServer_lockDataModel(server)
            iec.IedServer_updateFloatAttributeValue(server, totw, power)
            iec.IedServer_updateFloatAttributeValue(server, hz, 50.0 + rng.uniform(-0.02, 0.02))
            iec.IedServer_unlockDataModel(server)
    finally:
        iec.IedServer_stop(server)
        iec.IedServer_destroy(server)
        iec.IedModel_destroy(model)
        shutil.rmtree(files, ignore_errors=True)
        emit("stopped")
    return 0


def _fc(iec: Any, name: str) -> Any:
    return getattr(iec, f"IEC61850_FC_{name.upper()}")


def _err(result: Any) -> tuple[Any, int]:
    """SWIG returns (value, IedClientError) for functions with an ``IedClientError*`` out-arg."""
    if isinstance(result, (tuple, list)):
        if len(result) == 2:
            return result[0], int(result[1])
        return None, int(result[-1])
    return result, 0


def _strings(iec: Any, linked: Any) -> list[str]:
    out: list[str] = []
    if not linked:
        return out
    elem = iec.LinkedList_getNext(linked)
    while elem:
        data = iec.LinkedList_getData(elem)
        if data is not None:
            out.append(iec.toCharP(data))
        elem = iec.LinkedList_getNext(elem)
    iec.LinkedList_destroy(linked)
    return out


class Session:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.conn: Any = None

    def get(self) -> Any:
        iec = _iec()
        if self.conn is None:
            conn = iec.IedConnection_create()
            iec.IedConnection_setConnectTimeout(conn, int(float(self.spec.get("timeout", 3.0)) * 1000))
            _, err = _err(iec.IedConnection_connect(conn, self.spec["target"], int(self.spec["port"])))
            if err != iec.IED_ERROR_OK:
                iec.IedConnection_destroy(conn)
                raise ConnectionError(f"MMS association with {self.spec['target']} failed "
                                      f"(IedClientError {err})")
            self.conn = conn
            # libiec61850's receive thread finishes the association after connect returns; a
            # request sent at once sometimes fails with IED_ERROR_CONNECTION_LOST (3) on a loaded
            # machine.  Let it settle (see also _retry).
            time.sleep(0.05)
        return self.conn

    def mms(self) -> Any:
        return _iec().IedConnection_getMmsConnection(self.get())

    def close(self) -> None:
        if self.conn is not None:
            iec = _iec()
            try:
                iec.IedConnection_close(self.conn)
            finally:
                iec.IedConnection_destroy(self.conn)
                self.conn = None


def _mms_call(fn: Any, *args: Any) -> tuple[Any, int]:
    iec = _iec()
    err = iec.MmsError_create()  # a few bytes; these bindings have no MmsError_destroy
    value = fn(*args[:1], err, *args[1:])
    return value, int(iec.MmsError_getValue(err))


#: Errors after which the association is gone: reconnect once and retry.
_LOST = (1, 3)  # IedClientError: IED_ERROR_NOT_CONNECTED, IED_ERROR_CONNECTION_LOST
_MMS_LOST = (2,)  # MmsError: MMS_ERROR_CONNECTION_LOST


def _retry(fn: Any) -> Any:
    def wrapped(s: Session, a: dict[str, Any]) -> dict[str, Any]:
        out = fn(s, a)
        if out.get("error") in _LOST or out.get("mms_error") in _MMS_LOST:
            s.close()
            out = fn(s, a)
            out["reconnected"] = True
        return out

    wrapped.__doc__ = fn.__doc__
    return wrapped


def _identify(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    iec = _iec()
    ident, code = _mms_call(iec.MmsConnection_identify, s.mms())
    if ident is None:
        return {"ok": False, "mms_error": code}
    out = {"ok": True, "vendor": ident.vendorName, "model": ident.modelName,
           "revision": ident.revision}
    iec.MmsServerIdentity_destroy(ident)
    return out


def _get_name_list(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    iec = _iec()
    if str(a.get("class", "domain")) == "domain":
        names, code = _mms_call(iec.MmsConnection_getDomainNames, s.mms())
    else:
        names, code = _mms_call(iec.MmsConnection_getDomainVariableNames, s.mms(),
                                str(a.get("domain", DOMAIN)))
    got = _strings(iec, names)
    return {"ok": code == 0, "mms_error": code, "count": len(got), "first": got[:3]}


def _read(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    iec = _iec()
    val, err = _err(iec.IedConnection_readObject(s.get(), f"{DOMAIN}/{a['ref']}",
                                                 _fc(iec, a.get("fc", "MX"))))
    out: dict[str, Any] = {"ok": err == 0, "error": err}
    if val is not None:
        out["type"] = int(iec.MmsValue_getType(val))
        iec.MmsValue_delete(val)
    return out


def _value(iec: Any, v: Any) -> Any:
    if isinstance(v, bool):
        return iec.MmsValue_newBoolean(v)
    if isinstance(v, int):
        return iec.MmsValue_newIntegerFromInt32(v)
    if isinstance(v, float):
        return iec.MmsValue_newFloat(v)
    return iec.MmsValue_newVisibleString(str(v))


def _write(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    iec = _iec()
    val = _value(iec, a["value"])
    try:
        _, err = _err(iec.IedConnection_writeObject(s.get(), f"{DOMAIN}/{a['ref']}",
                                                    _fc(iec, a.get("fc", "SP")), val))
    finally:
        iec.MmsValue_delete(val)
    return {"ok": err == 0, "error": err}


def _gvaa(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    iec = _iec()
    spec, code = _mms_call(iec.MmsConnection_getVariableAccessAttributes, s.mms(),
                           str(a.get("domain", DOMAIN)), str(a["item"]))
    if spec is not None:
        iec.MmsVariableSpecification_destroy(spec)
    return {"ok": spec is not None, "mms_error": code}


def _control(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    iec = _iec()
    ref = f"{DOMAIN}/{a['ref']}"
    coc = iec.ControlObjectClient_create(ref, s.get())
    if coc is None:
        return {"ok": False, "error": "no control object " + ref}
    try:
        iec.ControlObjectClient_setOrigin(coc, str(a.get("origin", "qn")), 3)
        selected = True
        if a.get("select"):
            selected = bool(iec.ControlObjectClient_select(coc))
        val = iec.MmsValue_newBoolean(bool(a.get("value", True)))
        try:
            ok = bool(iec.ControlObjectClient_operate(coc, val, 0))
        finally:
            iec.MmsValue_delete(val)
        return {"ok": ok, "selected": selected}
    finally:
        iec.ControlObjectClient_destroy(coc)


def _file_directory(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    iec = _iec()
    entries, err = _err(iec.IedConnection_getFileDirectory(s.get(), str(a.get("dir", "/"))))
    names = []
    if entries:
        elem = iec.LinkedList_getNext(entries)
        while elem:
            entry = iec.toFileDirectoryEntry(iec.LinkedList_getData(elem))
            names.append(iec.FileDirectoryEntry_getFileName(entry))
            elem = iec.LinkedList_getNext(elem)
    return {"ok": err == 0, "error": err, "files": names}


def _file_open(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    iec = _iec()
    err = iec.MmsError_create()
    res = iec.MmsConnection_fileOpen(s.mms(), err, str(a["file"]), 0, None, None)
    frsm = res[0] if isinstance(res, (tuple, list)) else res
    code = int(iec.MmsError_getValue(err))
    if code == 0:
        iec.MmsConnection_fileClose(s.mms(), err, frsm)
    return {"ok": code == 0, "mms_error": code}


def _file_delete(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    iec = _iec()
    _, err = _err(iec.IedConnection_deleteFile(s.get(), str(a["file"])))
    return {"ok": err == 0, "error": err}


def _conclude(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    iec = _iec()
    if s.conn is None:
        return {"ok": False}
    _, err = _err(iec.IedConnection_release(s.conn))
    time.sleep(0.05)
    s.close()
    return {"ok": err == 0, "error": err}


def _abort(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    iec = _iec()
    if s.conn is None:
        return {"ok": False}
    _, err = _err(iec.IedConnection_abort(s.conn))
    s.close()
    return {"ok": err == 0, "error": err}


def _associate(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    s.get()
    return {"ok": True}


ACTIONS = {
    "associate": _associate,
    "identify": _retry(_identify),
    "get_name_list": _retry(_get_name_list),
    "read": _retry(_read),
    "write": _retry(_write),
    "get_variable_access_attributes": _retry(_gvaa),
    "control": _control,
    "file_directory": _retry(_file_directory),
    "file_open": _retry(_file_open),
    "file_delete": _retry(_file_delete),
    "conclude": _conclude,
    "abort": _abort,
}
