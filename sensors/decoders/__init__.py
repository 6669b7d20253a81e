"""Protocol decoders, registered explicitly: one line per protocol. Importing a decoder registers nothing.

A key names one registration; `DecoderSpec.name` is the protocol (and dataset), the same for a
protocol's TCP and UDP registrations.
"""

from __future__ import annotations

from .arp import SPEC as ARP
from .bacnet import SPEC as BACNET
from .base import DecoderSpec
from .dnp3 import SPEC as DNP3, SPEC_UDP as DNP3_UDP
from .enip import SPECS as ENIP_SPECS
from .fins import SPEC as FINS, SPEC_TCP as FINS_TCP
from .goose import SPEC as GOOSE
from .iec104 import SPEC as IEC104
from .modbus import SPEC as MODBUS
from .mqtt import SPEC as MQTT
from .opcua import SPEC as OPCUA
from .profinet import RT_SPEC as PROFINET_RT, SPEC as PROFINET
from .s7comm import SPEC as S7COMM, SPEC_MMS as MMS

REGISTRY: dict[str, DecoderSpec] = {
    MODBUS.name: MODBUS,
    OPCUA.name: OPCUA,
    BACNET.name: BACNET,
    S7COMM.name: S7COMM,
    MMS.name: MMS,  # TCP 102 shared with S7comm: the same ISO transport flow dispatches by payload
    IEC104.name: IEC104,
    MQTT.name: MQTT,
    DNP3.name: DNP3,
    "dnp3_udp": DNP3_UDP,
    FINS.name: FINS,  # UDP 9600
    "fins_tcp": FINS_TCP,  # FINS/TCP 9600
    GOOSE.name: GOOSE,  # layer 2: ethertype 0x88B8
    PROFINET.name: PROFINET,  # IO CM: UDP 34964 and DCE/RPC datagrams recognised on any port
    "profinet_rt": PROFINET_RT,  # DCP and alarms: ethertype 0x8892
    ARP.name: ARP,  # layer 2: ethertype 0x0806
    **ENIP_SPECS,  # enip over TCP and UDP 44818, cip_io on UDP 2222
}

