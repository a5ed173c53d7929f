"""Toy ttbar-like events for tests, benchmarks and demonstrations of the evaluation.

GEN: a few collimated sprays of particles ("jets") on top of a soft, uniform
underlying event. PFC: each GEN particle is kept with a fixed efficiency, its pT
smeared by a Gaussian relative resolution and scaled, its angles smeared, its
class sometimes changed, and soft fake particles (a stand-in for pileup) are
added; the detector's PFC cut (pT > 1 GeV) is applied last.

These events are a tool to exercise the evaluation, not a physics model: the
numbers below are round values chosen to give ttbar-like multiplicities
(about 150 GEN particles and 5 jets above 10 GeV per event).
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np

from parnassus.core import events as ev

_CLASS_PROBABILITIES = np.array([0.60, 0.01, 0.01, 0.10, 0.28])


@dataclass(frozen=True)
class ToyDetector:
    """Parameters of the toy PFC response.

    Attributes:
        efficiency: probability that a GEN particle gives a PFC.
        pt_scale: multiplies every PFC pT (1 = unbiased).
        pt_resolution: Gaussian relative pT resolution.
        angle_resolution: Gaussian resolution of eta and phi (rad).
        class_confusion: probability that a PFC gets a random class.
        fakes_per_event: mean number of fake (pileup-like) PFCs per event.
        pt_min: the PFC pT cut in GeV.
    """

    efficiency: float = 0.92
    pt_scale: float = 1.0
    pt_resolution: float = 0.08
    angle_resolution: float = 0.01
    class_confusion: float = 0.08
    fakes_per_event: float = 15.0
    pt_min: float = 1.0


def toy_gen(n_events: int, seed: int = 0) -> tuple[ak.Array, np.ndarray]:
    """Draw GEN particles of ttbar-like toy events.

    Returns:
        (particles, event_number): jagged particle records and int64 (events,).
    """
    rng = np.random.default_rng(seed)
    events_pt, events_eta, events_phi, counts = [], [], [], []
    for _ in range(n_events):
        n_jets = 2 + rng.poisson(3.0)
        jet_pt = 15.0 + rng.exponential(40.0, n_jets)
        jet_eta = rng.uniform(-2.3, 2.3, n_jets)
        jet_phi = rng.uniform(-np.pi, np.pi, n_jets)
        pt_parts, eta_parts, phi_parts = [], [], []
        for pt_jet, eta_jet, phi_jet in zip(jet_pt, jet_eta, jet_phi):
            n_particles = 4 + rng.poisson(8.0)
            fractions = rng.dirichlet(np.full(n_particles, 0.7))
            spread = 0.12 * rng.standard_normal((2, n_particles))
            pt_parts.append(pt_jet * fractions)
            eta_parts.append(eta_jet + spread[0])
            phi_parts.append(phi_jet + spread[1])
        n_soft = rng.poisson(80.0)
        pt_parts.append(0.25 + rng.exponential(0.8, n_soft))
        eta_parts.append(rng.uniform(-2.7, 2.7, n_soft))
        phi_parts.append(rng.uniform(-np.pi, np.pi, n_soft))
        events_pt.append(np.concatenate(pt_parts))
        events_eta.append(np.concatenate(eta_parts))
        events_phi.append(np.concatenate(phi_parts))
        counts.append(len(events_pt[-1]))

    counts = np.asarray(counts)
    pt = np.concatenate(events_pt)
    eta = np.clip(np.concatenate(events_eta), -2.69, 2.69)
    phi = ev.wrap_phi(np.concatenate(events_phi))
    total = len(pt)
    vz_event = np.repeat(rng.normal(0.0, 5.0, n_events), counts)
    vx = rng.normal(0.0, 0.002, total)
    vy = rng.normal(0.0, 0.002, total)
    vz = vz_event + rng.normal(0.0, 0.001, total)
    cls = rng.choice(5, size=total, p=_CLASS_PROBABILITIES)

    def jagged(values):
        return ak.unflatten(values, counts)

    particles = ev.make_particles(jagged(pt), jagged(eta), jagged(phi), jagged(vx), jagged(vy), jagged(vz), jagged(cls))
    particles = ev.sort_by_pt(particles)
    return particles, np.arange(n_events, dtype=np.int64) + 1000


def toy_pfc(gen: ak.Array, detector: ToyDetector = ToyDetector(), seed: int = 1) -> ak.Array:
    """Draw PFCs for GEN particles with the toy response ``detector``."""
    rng = np.random.default_rng(seed)
    counts = ak.to_numpy(ak.num(gen, axis=1))
    flat = {field: ak.to_numpy(ak.flatten(gen[field])).astype(np.float64) for field in ("pt", "eta", "phi", "vx", "vy", "vz")}
    cls = ak.to_numpy(ak.flatten(gen["class"])).astype(np.int64)
    total = len(cls)

    kept = rng.random(total) < detector.efficiency
    pt = flat["pt"] * detector.pt_scale * (1.0 + detector.pt_resolution * rng.standard_normal(total))
    eta = flat["eta"] + detector.angle_resolution * rng.standard_normal(total)
    phi = ev.wrap_phi(flat["phi"] + detector.angle_resolution * rng.standard_normal(total))
    confused = rng.random(total) < detector.class_confusion
    cls = np.where(confused, rng.choice(5, size=total, p=_CLASS_PROBABILITIES), cls)
    event_of_particle = np.repeat(np.arange(len(counts)), counts)

    n_fakes = rng.poisson(detector.fakes_per_event, len(counts))
    fake_event = np.repeat(np.arange(len(counts)), n_fakes)
    n_fake_total = len(fake_event)
    vz_event = np.zeros(len(counts))
    vz_event[event_of_particle] = flat["vz"]

    columns = {
        "event": np.concatenate([event_of_particle[kept], fake_event]),
        "pt": np.concatenate([pt[kept], detector.pt_min + rng.exponential(1.5, n_fake_total)]),
        "eta": np.concatenate([eta[kept], rng.uniform(-2.7, 2.7, n_fake_total)]),
        "phi": np.concatenate([phi[kept], rng.uniform(-np.pi, np.pi, n_fake_total)]),
        "vx": np.concatenate([flat["vx"][kept], rng.normal(0.0, 0.002, n_fake_total)]),
        "vy": np.concatenate([flat["vy"][kept], rng.normal(0.0, 0.002, n_fake_total)]),
        "vz": np.concatenate([flat["vz"][kept], vz_event[fake_event] + rng.normal(0.0, 4.0, n_fake_total)]),
        "class": np.concatenate([cls[kept], rng.choice(5, size=n_fake_total, p=_CLASS_PROBABILITIES)]),
    }
    keep = (columns["pt"] > detector.pt_min) & (np.abs(columns["eta"]) < 2.7)
    order = np.argsort(columns["event"][keep], kind="stable")
    columns = {key: value[keep][order] for key, value in columns.items()}
    pfc_counts = np.bincount(columns["event"], minlength=len(counts))

    def jagged(values):
        return ak.unflatten(values, pfc_counts)

    particles = ev.make_particles(*(jagged(columns[key]) for key in ("pt", "eta", "phi", "vx", "vy", "vz", "class")))
    return ev.sort_by_pt(particles)


def toy_events(n_events: int, gen_seed: int = 0, pfc_seed: int = 1, detector: ToyDetector = ToyDetector()) -> ak.Array:
    """Draw toy events with GEN and PFC: the same ``gen_seed`` gives the same GEN events.

    Args:
        n_events: number of events.
        gen_seed: seed of the GEN particles.
        pfc_seed: seed of the PFC response.
        detector: the toy PFC response.

    Returns:
        Events ``{gen, pfc, event_number}`` with event numbers from 1000.
    """
    gen, event_number = toy_gen(n_events, gen_seed)
    pfc = toy_pfc(gen, detector, pfc_seed)
    return ev.make_events(gen, pfc, event_number)
