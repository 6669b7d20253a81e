"""Passive sensors: bytes (pcap/pcapng files or a live interface) -> decoded protocol events."""
