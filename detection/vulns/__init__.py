"""Vulnerability matching: CSAF 2.0 advisories indexed, matched against the passive inventory."""
