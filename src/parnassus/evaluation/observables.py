"""Observables of the evaluation: event quantities, jets, particles, matching and residuals.

Every observable is a flat array of values (one per event, per jet, per particle
or per matched pair) under a key ``group/name`` or ``group/set/name``. Each value
remembers the position of its event, so metrics can split and resample by event.

Residual conventions (as in arXiv:2503.19981, with the sign fixed here):

- counts (N, N jets, N per class): PFC - GEN;
- continuous quantities (HT, MET_x, MET_y, pT, C2, D2): (PFC - GEN) / GEN, where the
  GEN value is not zero;
- angles and vertices (eta, phi, vx, vy, vz): PFC - GEN, phi wrapped into [-pi, pi).

Only particles inside the evaluation acceptance |eta| < card.eval_abs_eta_max
enter, for GEN and PFC alike. Jets are clustered from the accepted particles.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import awkward as ak
import numpy as np

from parnassus.core import events as ev
from parnassus.core.matching import Matching, delta_phi, match_particles
from parnassus.evaluation.jets import (
    DEFAULT_JET_PT_MIN,
    Jets,
    cluster_jets,
    leading_jet_constituents,
    match_jets,
    substructure,
)

log = logging.getLogger(__name__)

#: Largest Delta R of a matched GEN-PFC particle pair (arXiv:2503.19981).
PARTICLE_MATCH_MAX_DELTA_R = 0.6

#: Particle sets: all particles, jet constituents, particles outside jets.
PARTICLE_SETS = ("all", "in_jets", "out_of_jets")

PARTICLE_FEATURES = ("pt", "eta", "phi", "vx", "vy", "vz")
EVENT_FEATURES = ("n", "n_jets", "met_x", "met_y", "ht")
JET_FEATURES = ("pt", "eta", "phi", "c2", "d2")

#: Short names of the particle classes, in the order of their codes.
CLASS_NAMES = ("charged_hadron", "electron", "muon", "neutral_hadron", "photon")
CLASS_KEYS = tuple(f"n_{name}" for name in CLASS_NAMES)

#: Features whose residual is relative, (PFC - GEN) / GEN; the others take PFC - GEN.
RELATIVE_RESIDUALS = frozenset({"met_x", "met_y", "ht", "pt", "c2", "d2"})

_LABELS = {
    "n": r"$N$",
    "n_jets": r"$N_\mathrm{jets}$",
    "met_x": r"$E_{x}^\mathrm{miss}$ [GeV]",
    "met_y": r"$E_{y}^\mathrm{miss}$ [GeV]",
    "ht": r"$H_T$ [GeV]",
    "pt": r"$p_T$ [GeV]",
    "eta": r"$\eta$",
    "phi": r"$\phi$ [rad]",
    "vx": r"$v_x$ [cm]",
    "vy": r"$v_y$ [cm]",
    "vz": r"$v_z$ [cm]",
    "c2": r"leading-jet $C_2$",
    "d2": r"leading-jet $D_2$",
    "n_charged_hadron": r"$N_\mathrm{ch.\,had}$",
    "n_electron": r"$N_{e}$",
    "n_muon": r"$N_{\mu}$",
    "n_neutral_hadron": r"$N_\mathrm{nu.\,had}$",
    "n_photon": r"$N_{\gamma}$",
}

_RESIDUAL_LABELS = {
    "met_x": r"$E_{x}^\mathrm{miss}$",
    "met_y": r"$E_{y}^\mathrm{miss}$",
    "ht": r"$H_T$",
    "pt": r"$p_T$",
    "c2": r"$C_2$",
    "d2": r"$D_2$",
}


@dataclass(frozen=True)
class Observable:
    """How to show one observable.

    Attributes:
        key: ``group/name`` or ``group/set/name``.
        group: the first part of the key (``event``, ``jet_residual``, ``particle``, ...).
        label: the axis label (matplotlib mathtext).
        discrete: integer-valued (counts), histogrammed with unit bins.
        log_y: steeply falling (pT spectra), drawn with a logarithmic y axis.
    """

    key: str
    group: str
    label: str
    discrete: bool = False
    log_y: bool = False


def describe(key: str) -> Observable:
    """Return the :class:`Observable` for a key, with its axis label."""
    parts = key.split("/")
    group, name = parts[0], parts[-1]
    discrete = name == "n" or name.startswith("n_")
    if group.endswith("_residual"):
        symbol = _RESIDUAL_LABELS.get(name, _LABELS.get(name, name))
        if name in RELATIVE_RESIDUALS:
            label = f"{symbol}: (PFC $-$ GEN) / GEN"
        else:
            label = f"{symbol}: PFC $-$ GEN"
    else:
        label = _LABELS.get(name, name)
    if len(parts) == 3 and (group.startswith("particle") or group == "class_residual"):
        label = f"{label} ({parts[1].replace('_', ' ')})"
    if group == "extra":
        label = name
    log_y = name == "pt" and not group.endswith("_residual")
    return Observable(key=key, group=group, label=label, discrete=discrete, log_y=log_y)


@dataclass
class Values:
    """Values of the observables of one sample, each with the event position of every value.

    Attributes:
        n_events: number of events evaluated.
        data: key -> float64 array of values (NaN never stored).
        event_index: key -> int64 array, the position of each value's event.
        confusion: particle set -> int64 (5, 5) counts, GEN class (rows) vs PFC class (columns)
            of matched pairs.
        class_counts: particle set -> int64 (5,) counts of PFC classes.
        summary: scalar figures (jet matching efficiency, particle matching efficiency, ...).
    """

    n_events: int
    data: dict[str, np.ndarray] = field(default_factory=dict)
    event_index: dict[str, np.ndarray] = field(default_factory=dict)
    confusion: dict[str, np.ndarray] = field(default_factory=dict)
    class_counts: dict[str, np.ndarray] = field(default_factory=dict)
    summary: dict[str, float] = field(default_factory=dict)

    def add(self, key: str, values, event_index) -> None:
        """Store finite values of ``key`` with their event positions."""
        values = np.asarray(values, dtype=np.float64)
        event_index = np.asarray(event_index, dtype=np.int64)
        finite = np.isfinite(values)
        self.data[key] = values[finite]
        self.event_index[key] = event_index[finite]

    def add_per_event(self, key: str, values) -> None:
        self.add(key, values, np.arange(len(values)))

    def add_jagged(self, key: str, values: ak.Array) -> None:
        """Store a jagged (events, items) array, flattened."""
        counts = ak.to_numpy(ak.num(values, axis=1))
        self.add(key, ak.to_numpy(ak.flatten(values)), np.repeat(np.arange(len(counts)), counts))


# --- event selection ---------------------------------------------------------------------------


def apply_acceptance(events: ak.Array, abs_eta_max: float) -> ak.Array:
    """Keep the GEN (and PFC) particles with |eta| < abs_eta_max."""
    fields = {"gen": events.gen[np.abs(events.gen.eta) < abs_eta_max]}
    if ev.has_pfc(events):
        fields["pfc"] = events.pfc[np.abs(events.pfc.eta) < abs_eta_max]
    fields["event_number"] = events.event_number
    return ak.zip(fields, depth_limit=1)


# --- GEN side, computed once per process --------------------------------------------------------


@dataclass
class GenLevel:
    """GEN particles in the acceptance with their jets and event quantities."""

    particles: ak.Array
    quantities: dict[str, np.ndarray]
    jets: Jets
    in_jets: ak.Array
    leading: dict[str, np.ndarray]

    @property
    def n_events(self) -> int:
        return len(self.particles)


def gen_level(gen: ak.Array, jet_pt_min: float = DEFAULT_JET_PT_MIN) -> GenLevel:
    """Cluster the GEN jets and compute the GEN event quantities.

    Args:
        gen: jagged GEN particle records already inside the acceptance.
        jet_pt_min: minimum jet pT in GeV.
    """
    jets = cluster_jets(gen, pt_min=jet_pt_min)
    return GenLevel(
        particles=gen,
        quantities=_event_quantities(gen, jets),
        jets=jets,
        in_jets=jets.in_jets(),
        leading=substructure(leading_jet_constituents(gen, jets)),
    )


def _event_quantities(particles: ak.Array, jets: Jets) -> dict[str, np.ndarray]:
    quantities = ev.event_quantities(particles)
    result = {
        "n": quantities["n"].astype(np.float64),
        "n_jets": jets.n_jets.astype(np.float64),
        "met_x": quantities["met_x"],
        "met_y": quantities["met_y"],
        "ht": quantities["ht"],
    }
    for column, key in enumerate(CLASS_KEYS):
        result[key] = quantities["n_per_class"][:, column].astype(np.float64)
    return result


def gen_values(gen: GenLevel) -> Values:
    """Return the GEN spectra (event, jet and particle groups) to draw beside the samples."""
    values = Values(n_events=gen.n_events)
    for key, column in gen.quantities.items():
        values.add_per_event(f"event/{key}", column)
    _add_jet_spectra(values, gen.jets, gen.leading)
    for particle_set in PARTICLE_SETS:
        selected = _select_set(gen.particles, gen.in_jets, particle_set)
        for feature in PARTICLE_FEATURES:
            values.add_jagged(f"particle/{particle_set}/{feature}", selected[feature])
        values.class_counts[particle_set] = _class_counts(selected)
    return values


# --- one sample ---------------------------------------------------------------------------------


def sample_values(pfc: ak.Array, gen: GenLevel, jet_pt_min: float = DEFAULT_JET_PT_MIN) -> Values:
    """Compute every built-in observable of one sample against the GEN of the same events.

    Args:
        pfc: jagged PFC records inside the acceptance, aligned event by event with ``gen``.
        gen: the :class:`GenLevel` of the same events.
        jet_pt_min: minimum jet pT in GeV, the same as for ``gen``.

    Returns:
        :class:`Values` with the groups ``event``, ``event_residual``, ``jet``,
        ``jet_residual``, ``particle``, ``particle_residual``, ``class_residual``
        and ``unmatched``.
    """
    if len(pfc) != gen.n_events:
        raise ValueError(f"{len(pfc)} PFC events for {gen.n_events} GEN events")
    values = Values(n_events=len(pfc))

    jets = cluster_jets(pfc, pt_min=jet_pt_min)
    leading = substructure(leading_jet_constituents(pfc, jets))
    quantities = _event_quantities(pfc, jets)
    _add_event_observables(values, quantities, gen.quantities)
    _add_jet_spectra(values, jets, leading)
    _add_jet_residuals(values, pfc, jets, gen)

    in_jets = jets.in_jets()
    for particle_set in PARTICLE_SETS:
        _add_particle_observables(values, particle_set, _select_set(pfc, in_jets, particle_set), gen)
    return values


def _add_event_observables(values: Values, quantities: dict, gen_quantities: dict) -> None:
    for key, column in quantities.items():
        values.add_per_event(f"event/{key}", column)
        values.add_per_event(f"event_residual/{key}", residual(key, column, gen_quantities[key]))


def residual(feature: str, reco, truth):
    """Return the residual of ``feature``: relative for pT-like quantities, a difference otherwise.

    Relative residuals are NaN where the GEN value is zero; phi differences are wrapped.
    """
    reco = np.asarray(reco, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if feature in RELATIVE_RESIDUALS:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(truth != 0, (reco - truth) / truth, np.nan)
    if feature == "phi":
        return delta_phi(reco, truth)
    return reco - truth


def _add_jet_spectra(values: Values, jets: Jets, leading: dict) -> None:
    for feature in ("pt", "eta", "phi"):
        values.add_jagged(f"jet/{feature}", getattr(jets, feature))
    for feature in ("c2", "d2"):
        values.add_per_event(f"jet/{feature}", leading[feature])


def _add_jet_residuals(values: Values, pfc: ak.Array, jets: Jets, gen: GenLevel) -> None:
    matching = match_jets(gen.jets, jets)
    n_gen_jets = int(gen.jets.n_jets.sum())
    values.summary["jet_match_efficiency"] = float(matching.n_pairs.sum() / n_gen_jets) if n_gen_jets else float("nan")

    pair_event = np.repeat(np.arange(len(matching)), matching.n_pairs)
    for feature in ("pt", "eta", "phi"):
        truth = ak.to_numpy(ak.flatten(getattr(gen.jets, feature)[matching.gen_index]))
        reco = ak.to_numpy(ak.flatten(getattr(jets, feature)[matching.pfc_index]))
        values.add(f"jet_residual/{feature}", residual(feature, reco, truth), pair_event)

    # C2 and D2 residuals: the leading GEN jet against the PFC jet matched to it.
    first_is_leading = ak.to_numpy(ak.fill_none(ak.firsts(matching.gen_index), -1)) == 0
    events = np.flatnonzero(first_is_leading)
    pfc_index = ak.to_numpy(ak.fill_none(ak.firsts(matching.pfc_index), -1))[events]
    candidates = jets.constituents[events]
    is_matched_jet = ak.local_index(candidates, axis=1) == pfc_index[:, np.newaxis]
    constituents = ak.flatten(candidates[is_matched_jet], axis=1)
    matched = substructure(pfc[events][constituents])
    for feature in ("c2", "d2"):
        values.add(f"jet_residual/{feature}", residual(feature, matched[feature], gen.leading[feature][events]), events)


def _select_set(particles: ak.Array, in_jets: ak.Array, particle_set: str) -> ak.Array:
    if particle_set == "all":
        return particles
    if particle_set == "in_jets":
        return particles[in_jets]
    if particle_set == "out_of_jets":
        return particles[~in_jets]
    raise ValueError(f"unknown particle set {particle_set!r}; expected one of {', '.join(PARTICLE_SETS)}")


def _class_counts(particles: ak.Array) -> np.ndarray:
    classes = ak.to_numpy(ak.flatten(particles["class"])).astype(np.int64)
    return np.bincount(classes, minlength=ev.N_CLASSES)[: ev.N_CLASSES].astype(np.int64)


def _add_particle_observables(values: Values, particle_set: str, pfc: ak.Array, gen: GenLevel) -> None:
    for feature in PARTICLE_FEATURES:
        values.add_jagged(f"particle/{particle_set}/{feature}", pfc[feature])
    values.class_counts[particle_set] = _class_counts(pfc)

    gen_selected = _select_set(gen.particles, gen.in_jets, particle_set)
    matching = match_particles(gen_selected, pfc, PARTICLE_MATCH_MAX_DELTA_R)
    n_gen = int(matching.n_gen.sum())
    values.summary[f"particle_match_efficiency/{particle_set}"] = (
        float(matching.n_pairs.sum() / n_gen) if n_gen else float("nan")
    )

    matched_gen = gen_selected[matching.gen_index]
    matched_pfc = pfc[matching.pfc_index]
    pair_event = np.repeat(np.arange(len(matching)), matching.n_pairs)
    for feature in PARTICLE_FEATURES:
        truth = ak.to_numpy(ak.flatten(matched_gen[feature]))
        reco = ak.to_numpy(ak.flatten(matched_pfc[feature]))
        values.add(f"particle_residual/{particle_set}/{feature}", residual(feature, reco, truth), pair_event)

    gen_class = ak.to_numpy(ak.flatten(matched_gen["class"])).astype(np.int64)
    pfc_class = ak.to_numpy(ak.flatten(matched_pfc["class"])).astype(np.int64)
    values.confusion[particle_set] = confusion_matrix(gen_class, pfc_class)

    if particle_set == "all":
        pt_residual = residual(
            "pt", ak.to_numpy(ak.flatten(matched_pfc.pt)), ak.to_numpy(ak.flatten(matched_gen.pt))
        )
        for particle_class in ev.ParticleClass:
            selected = gen_class == particle_class
            key = f"class_residual/{CLASS_NAMES[particle_class]}/pt"
            values.add(key, pt_residual[selected], pair_event[selected])
        _add_unmatched(values, pfc, matching)


def confusion_matrix(gen_class: np.ndarray, pfc_class: np.ndarray) -> np.ndarray:
    """Return int64 (5, 5) counts of matched pairs: row = GEN class, column = PFC class."""
    flat = gen_class * ev.N_CLASSES + pfc_class
    return np.bincount(flat, minlength=ev.N_CLASSES**2).reshape(ev.N_CLASSES, ev.N_CLASSES)


def _add_unmatched(values: Values, pfc: ak.Array, matching: Matching) -> None:
    unmatched = pfc[~matching.pfc_matched()]
    values.add_per_event("unmatched/n", ak.to_numpy(ak.num(unmatched, axis=1)))
    for feature in PARTICLE_FEATURES:
        values.add_jagged(f"unmatched/{feature}", unmatched[feature])
    values.class_counts["unmatched"] = _class_counts(unmatched)


# --- plugin observables -------------------------------------------------------------------------


def add_extra_observables(values: Values, events: ak.Array, card) -> None:
    """Evaluate the ``parnassus_observables`` hooks on accepted events and store them as ``extra/NAME``.

    Raises:
        ValueError: when a hook returns an array without one value per event.
    """
    from parnassus.core.plugins import extra_observables

    for name, column in extra_observables(events, card).items():
        column = np.asarray(column, dtype=np.float64)
        if column.shape != (len(events),):
            raise ValueError(
                f"observable {name!r} from a parnassus_observables hook has shape {column.shape}; "
                f"expected one value per event, ({len(events)},)"
            )
        values.add_per_event(f"extra/{name}", column)
