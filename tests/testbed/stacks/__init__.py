"""Real protocol stacks for the testbed's host agent, one module per protocol.

Every module has the same shape::

    PORT: int                      # the protocol's well-known port
    TRANSPORT: "tcp" | "udp"
    def serve(config: dict) -> int          # blocks until STOP; emits "listening" once bound
    class Session:                          # one client of one target
        def __init__(self, spec: dict): ...
        def close(self) -> None: ...        # emits "close" for every socket it opened
    ACTIONS: dict[str, Callable[[Session, dict], dict]]   # op -> result summary

``config`` for ``serve``: ``bind``, ``port``, ``seed`` plus whatever the scenario's ``plcs``
entry carries for that stack.  A session opens its connection lazily in its actions and emits a
``connect`` event with the local (ip, port) of *every* socket it opens (TCP, or the UDP socket a
datagram client sends from): the labeller attributes frames to steps by those pairs.

DNP3 runs opendnp3, the reference C++ DNP3 stack, through its Python bindings ``yadnp3`` (module
``opendnp3``, a manylinux wheel): the only DNP3 stack that installs from PyPI here (Python 3.11).
``dnp3-python`` has no matching distribution (only 0.3.0b1, pre-release) and ``pydnp3`` builds
opendnp3 from source and fails ("python2.7/Python.h: No such file or directory"); ``dnp3py``
installs but is a pure-Python re-implementation, not a reference stack.  Like c104, opendnp3 opens
its sockets in C++: the SocketTracker's /proc polling reports them.

MMS (IEC 61850) runs libiec61850, the de-facto open IEC 61850 stack, through ``pyiec61850-ng``
(SWIG bindings, a manylinux wheel): an ``IedServer`` with a model built at run time and
``IedConnection`` clients.  Its sockets are opened in C: the SocketTracker's /proc polling reports
them.  GOOSE is not published from the testbed (see stacks/mms.py).

Modbus keeps its historical implementation in ``tests.testbed.host``; ``modbus`` is listed here
so scenarios can name it explicitly.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: stack name -> (well-known port, transport)
STACKS: dict[str, tuple[int, str]] = {
    "modbus": (502, "tcp"),
    "s7comm": (102, "tcp"),
    "iec104": (2404, "tcp"),
    "opcua": (4840, "tcp"),
    "enip": (44818, "tcp"),
    "bacnet": (47808, "udp"),
    "mqtt": (1883, "tcp"),
    "dnp3": (20000, "tcp"),
    "mms": (102, "tcp"),
    "fins": (9600, "udp"),  # our FINS/UDP responder (no PLC stack installs), PyPI `fins` clients
    "aitm": (0, "ethernet"),  # an attack step only (ARP poisoning + relay): no server, no port
}


def port_of(stack: str) -> int:
    return STACKS[stack][0]


def transport_of(stack: str) -> str:
    return STACKS[stack][1]


def load(stack: str) -> ModuleType:
    if stack not in STACKS or stack == "modbus":
        raise ValueError(f"no stack module {stack!r}; known: {sorted(STACKS)}")
    return importlib.import_module(f"{__name__}.{stack}")
