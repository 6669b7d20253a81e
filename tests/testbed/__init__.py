"""Qinling OT testbed: real pymodbus masters/slaves in network namespaces,
captured with tcpdump into pcaps/ with per-frame step labels.

Run ``python -m tests.testbed --help``.
"""
