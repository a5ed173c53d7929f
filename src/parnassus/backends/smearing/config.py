"""Settings of the smearing fit: bin layout per preset, matching cone, pooling thresholds.

The smearing backend fits histograms and per-bin moments in one pass, so the
training presets only choose how finely the (pT, |eta|) plane of the GEN
particles is divided. ``paper`` has the finest bins and needs the most training
events to fill them, ``tiny`` is meant for tests.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from parnassus.core.backend import PRESETS
from parnassus.exceptions import InvalidInputError

#: GEN bin layout of each preset: log-spaced pT bins and uniform |eta| bins.
PRESET_BINS = {
    "paper": {"pt_bins": 24, "eta_bins": 8},
    "small": {"pt_bins": 16, "eta_bins": 5},
    "tiny": {"pt_bins": 8, "eta_bins": 3},
}


@dataclass(frozen=True)
class SmearingConfig:
    """Everything that fixes the result of a smearing fit.

    Attributes:
        preset: the preset the bin counts came from.
        pt_bins: log-spaced GEN pT bins from the card's GEN pT threshold to ``pt_max_gev``.
        eta_bins: uniform GEN |eta| bins from 0 to the card's GEN |eta| limit.
        pt_max_gev: upper edge of the last GEN pT bin (GeV); harder particles use the last bin.
        match_delta_r: the largest Delta R of a GEN-PFC pair in the Hungarian matching.
        clip_sigmas: the resolutions are fitted on residuals within mean +- clip_sigmas
            standard deviations (iterated), so rare wrong pairs do not widen them; 0 uses all.
        min_entries_efficiency: GEN particles a bin needs before its own efficiency
            and class migration are used; sparser bins pool their neighbours.
        min_entries_resolution: matched pairs a bin needs before its own resolution is used.
        min_events_multiplicity: events a GEN-multiplicity bin needs before its own
            unmatched-PFC multiplicity distribution is used.
        multiplicity_bins: roughly log-spaced bins of the GEN multiplicity on which
            the number of unmatched PFCs is conditioned.
        unmatched_pt_bins: log-spaced pT bins of the unmatched-PFC histogram, from the
            PFC pT threshold to ``pt_max_gev``.
        unmatched_eta_bins: uniform signed eta bins of the unmatched-PFC histogram.
        vertex_bins: bins of the unmatched-PFC vertex histograms, uniform in
            asinh(v / 1 um) up to +-``vertex_max``, about 1 % of |v| wide at 4000 bins.
        vertex_max: the largest vertex coordinate the histograms resolve (the unit of
            the data, cm for the CMS files); larger values land in the edge bins.
        step_size: events read per chunk; bounds the memory of the fit.
    """

    preset: str = "small"
    pt_bins: int = PRESET_BINS["small"]["pt_bins"]
    eta_bins: int = PRESET_BINS["small"]["eta_bins"]
    pt_max_gev: float = 1000.0
    match_delta_r: float = 0.1
    clip_sigmas: float = 5.0
    min_entries_efficiency: int = 50
    min_entries_resolution: int = 20
    min_events_multiplicity: int = 50
    multiplicity_bins: int = 12
    unmatched_pt_bins: int = 40
    unmatched_eta_bins: int = 54
    vertex_bins: int = 4000
    vertex_max: float = 1000.0
    step_size: int = 10000

    @classmethod
    def from_preset(cls, preset: str, overrides: dict[str, Any] | None = None) -> "SmearingConfig":
        """Build the configuration of a preset with some settings overridden.

        Args:
            preset: one of ``paper``, ``small``, ``tiny``.
            overrides: setting name to value, for example ``{"match_delta_r": 0.2}``.

        Returns:
            The validated configuration.

        Raises:
            InvalidInputError: unknown preset or setting, or a value of the wrong type or range.
        """
        if preset not in PRESET_BINS:
            raise InvalidInputError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")

        values: dict[str, Any] = {"preset": preset, **PRESET_BINS[preset]}
        known = {f.name: f for f in dataclasses.fields(cls) if f.name != "preset"}
        for key, value in (overrides or {}).items():
            if key not in known:
                raise InvalidInputError(
                    f"the smearing backend has no setting {key!r}; settings: {', '.join(sorted(known))}"
                )
            values[key] = _convert(key, value, known[key].type)

        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        """Raise InvalidInputError for a value outside its allowed range."""
        positive_ints = (
            "pt_bins",
            "eta_bins",
            "min_entries_efficiency",
            "min_entries_resolution",
            "min_events_multiplicity",
            "multiplicity_bins",
            "unmatched_pt_bins",
            "unmatched_eta_bins",
            "vertex_bins",
            "step_size",
        )
        for key in positive_ints:
            if getattr(self, key) < 1:
                raise InvalidInputError(f"smearing setting {key} must be at least 1, got {getattr(self, key)}")
        for key in ("pt_max_gev", "match_delta_r", "vertex_max"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value > 0):
                raise InvalidInputError(f"smearing setting {key} must be a positive number, got {value}")
        if not (math.isfinite(self.clip_sigmas) and self.clip_sigmas >= 0):
            raise InvalidInputError(f"smearing setting clip_sigmas must be 0 or positive, got {self.clip_sigmas}")
        if 0 < self.clip_sigmas < 2:
            raise InvalidInputError(
                f"smearing setting clip_sigmas = {self.clip_sigmas} would cut into the Gaussian core; use 0 or at least 2"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _convert(key: str, value: Any, annotation: str) -> Any:
    """Convert an override to the setting's type (``int`` or ``float``), rejecting anything else."""
    if isinstance(value, bool):
        raise InvalidInputError(f"smearing setting {key} expects a number, got {value!r}")
    try:
        if annotation == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        return float(value)
    except (TypeError, ValueError) as error:
        raise InvalidInputError(f"smearing setting {key} expects {annotation}, got {value!r}") from error
