"""Shared fixtures: small physical event batches built from the event model."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from parnassus.core import events as ev


def random_particles(rng: np.random.Generator, counts, pt_min: float = 0.3) -> ak.Array:
    """Jagged particle records with a falling pT spectrum and uniform eta, phi."""
    counts = np.asarray(counts)
    total = int(counts.sum())
    pt = pt_min + rng.exponential(5.0, total)
    eta = rng.uniform(-2.6, 2.6, total)
    phi = rng.uniform(-np.pi, np.pi, total)
    vx = rng.normal(0.0, 0.002, total)
    vy = rng.normal(0.0, 0.002, total)
    vz = rng.normal(0.0, 5.0, total)
    cls = rng.choice(5, size=total, p=[0.55, 0.02, 0.02, 0.11, 0.30])

    def jag(values):
        return ak.unflatten(values, counts)

    return ev.make_particles(jag(pt), jag(eta), jag(phi), jag(vx), jag(vy), jag(vz), jag(cls))


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def small_events(rng):
    """Twenty events with GEN and PFC, event numbers 100-119."""
    gen = random_particles(rng, rng.integers(5, 40, 20))
    pfc = random_particles(rng, rng.integers(3, 30, 20), pt_min=1.0)
    return ev.make_events(gen, pfc, np.arange(100, 120))
