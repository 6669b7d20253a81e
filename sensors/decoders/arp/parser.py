"""ARP packet parsing (RFC 826): the fixed header, then addresses of the sizes it declares."""

from __future__ import annotations

import ipaddress

from pipeline.protocols.arp import Arp

HEADER = 8  # htype, ptype, hlen, plen, oper
ETHERNET = 1
IPV4 = 0x0800
OPCODES = {1: "request", 2: "reply", 3: "rarp_request", 4: "rarp_reply", 8: "inarp_request", 9: "inarp_reply"}

# anomaly codes (a fixed enum, as every decoder's)
TRUNCATED = "truncated"  # shorter than its header or than the addresses it declares
UNSUPPORTED_FORMAT = "unsupported_format"  # not Ethernet/IPv4 (address sizes other than 6 and 4)
UNKNOWN_OPCODE = "unknown_opcode"
ETHERNET_MISMATCH = "ethernet_mismatch"  # Ethernet source MAC differs from the ARP sender MAC


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def parse(data: memoryview | bytes) -> tuple[Arp | None, str | None]:
    """(fields, anomaly code or None). Never raises; (None, TRUNCATED) when even the opcode is missing."""
    b = bytes(data[:64])
    if len(b) < HEADER:
        return None, TRUNCATED
    htype = int.from_bytes(b[0:2], "big")
    ptype = int.from_bytes(b[2:4], "big")
    hlen, plen = b[4], b[5]
    op = int.from_bytes(b[6:8], "big")
    name = OPCODES.get(op, "unknown")
    head = Arp(opcode=op, opcode_name=name, hardware_type=htype, protocol_type=ptype, hardware_size=hlen, protocol_size=plen)
    if len(b) < HEADER + 2 * (hlen + plen):
        return head, TRUNCATED
    if htype != ETHERNET or ptype != IPV4 or hlen != 6 or plen != 4:
        return head, UNSUPPORTED_FORMAT
    at = HEADER
    sha, spa = b[at : at + 6], b[at + 6 : at + 10]
    tha, tpa = b[at + 10 : at + 16], b[at + 16 : at + 20]
    sender_ip, target_ip = str(ipaddress.IPv4Address(spa)), str(ipaddress.IPv4Address(tpa))
    probe = sender_ip == "0.0.0.0"
    arp = Arp(
        opcode=op, opcode_name=name, hardware_type=htype, protocol_type=ptype, hardware_size=hlen, protocol_size=plen,
        sender_mac=_mac(sha), sender_ip=sender_ip, target_mac=_mac(tha), target_ip=target_ip,
        gratuitous=True if (sender_ip == target_ip and not probe) else None, probe=True if probe else None,
    )
    return arp, (UNKNOWN_OPCODE if name == "unknown" else None)
