"""Errors of the learned-baseline detectors (a DetectionError each, so callers catch them together)."""

from __future__ import annotations

from ..exceptions import DetectionError


class AnomalyError(DetectionError):
    """Base of every anomaly-detection error."""


class ModelError(AnomalyError):
    """A model directory that cannot be used: missing, corrupt, or its checksum does not match."""


class SiteMismatchError(ModelError):
    """A model learned for one site was loaded for another."""

    def __init__(self, path: str, model_site: str, wanted: str) -> None:
        self.path, self.model_site, self.wanted = path, model_site, wanted
        super().__init__(
            f"{path}: model was learned for site {model_site!r}, not {wanted!r}; "
            f"learn one for {wanted!r} (`qinling learn PCAP... --site {wanted} --out DIR`) or pass that site's model"
        )


class NotTrainedError(AnomalyError):
    """A baseline was asked to protect before anything was learned."""
