"""Learned baselines and anomaly detectors: learn a site's normal traffic, then alert on departures."""
