"""ARP fields (`arp.*`, ethertype 0x0806): who claims which IPv4 address at which link address (RFC 826, RFC 5227)."""

from __future__ import annotations

from .base import Fields


class Arp(Fields):
    opcode: int  # 1 request, 2 reply (3/4 RARP, 8/9 InARP: decoded as far as the header goes)
    opcode_name: str  # request, reply, rarp_request, rarp_reply, inarp_request, inarp_reply, unknown
    hardware_type: int | None = None  # 1 Ethernet
    protocol_type: int | None = None  # 0x0800 IPv4
    hardware_size: int | None = None
    protocol_size: int | None = None
    sender_mac: str | None = None  # sender hardware address (the binding a reply or announcement claims)
    sender_ip: str | None = None
    target_mac: str | None = None
    target_ip: str | None = None
    gratuitous: bool | None = None  # sender IP == target IP (an announcement, RFC 5227 2.3): true only
    probe: bool | None = None  # sender IP 0.0.0.0 (address conflict probe, RFC 5227 2.1.1): true only
    unsolicited: bool | None = None  # a non-gratuitous reply answering no request seen in the last 5 s: true only
    ethernet_mismatch: bool | None = None  # Ethernet source MAC differs from the sender MAC: true only
    request_frame: int | None = None  # on a reply: frame of the request it answers
