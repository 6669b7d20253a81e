"""Passive inventory helpers: OUI lookup, vendor normalisation, identity claims from protocol fields, roles."""
