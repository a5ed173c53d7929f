"""Event builders for the I/O tests: random events and a Pythia8 HepMC3 file."""

from __future__ import annotations

import awkward as ak
import numpy as np

from parnassus.core import events as ev

CLASS_PDGIDS = np.array([211, 11, 13, 130, 22])


def random_particles(rng: np.random.Generator, counts: np.ndarray, with_pdgid: bool = False) -> ak.Array:
    """Return jagged particle records with plausible values and ``counts`` particles per event."""
    n = int(counts.sum())
    columns = [
        rng.exponential(5.0, n) + 0.3,  # pT (GeV)
        rng.normal(0.0, 2.0, n),  # eta
        rng.uniform(-np.pi, np.pi, n),  # phi (rad)
        rng.normal(0.0, 0.01, n),  # vx (cm)
        rng.normal(0.0, 0.01, n),  # vy (cm)
        rng.normal(0.0, 4.0, n),  # vz (cm)
    ]
    cls = rng.integers(0, ev.N_CLASSES, n)
    jagged = [ak.unflatten(column, counts) for column in columns]
    pdgid = None
    if with_pdgid:
        charged = cls <= ev.ParticleClass.MUON
        sign = np.where(charged, rng.choice([-1, 1], n), 1)
        pdgid = ak.unflatten(CLASS_PDGIDS[cls] * sign, counts)
    return ev.make_particles(*jagged, ak.unflatten(cls, counts), pdgid=pdgid)


def random_events(n_events: int, seed: int = 1, with_pfc: bool = True, with_pdgid: bool = False, min_particles: int = 1) -> ak.Array:
    """Return an event batch with 1-12 GEN particles (and 0-12 PFCs) per event."""
    rng = np.random.default_rng(seed)
    gen = random_particles(rng, rng.integers(min_particles, 13, n_events), with_pdgid)
    pfc = random_particles(rng, rng.integers(0, 13, n_events)) if with_pfc else None
    return ev.make_events(gen, pfc, 1000 + 3 * np.arange(n_events))


def assert_same_events(actual: ak.Array, expected: ak.Array) -> None:
    """Assert equal event numbers and particles (exact: float32 values survive every format)."""
    assert len(actual) == len(expected)
    np.testing.assert_array_equal(ak.to_numpy(actual.event_number), ak.to_numpy(expected.event_number))
    collections = ["gen", "pfc"] if ev.has_pfc(expected) else ["gen"]
    for collection in collections:
        np.testing.assert_array_equal(ak.num(actual[collection]), ak.num(expected[collection]))
        for field in ak.fields(expected[collection]):
            a = ak.to_numpy(ak.flatten(actual[collection][field]))
            b = ak.to_numpy(ak.flatten(expected[collection][field]))
            np.testing.assert_array_equal(a, b, err_msg=f"{collection}.{field}")


PYTHIA_SETTINGS = (
    "Beams:eCM = 7000",
    "Top:gg2ttbar = on",
    "Top:qqbar2ttbar = on",
    "Random:setSeed = on",
    "Print:quiet = on",
    "Next:numberCount = 0",
    "ParticleDecays:limitTau0 = on",
    "ParticleDecays:tau0Max = 10",
    # A spread beam spot, so that the mm -> cm conversion of the vertices is tested.
    "Beams:allowVertexSpread = on",
    "Beams:sigmaVertexX = 0.02",
    "Beams:sigmaVertexY = 0.02",
    "Beams:sigmaVertexZ = 40",
)


def _topological_order(event) -> list[int]:
    """Return the record indices (without the system entry 0) so that mothers precede daughters."""
    order, state = [], {}
    for root in range(1, event.size()):
        stack = [(root, False)]
        while stack:
            index, expanded = stack.pop()
            if expanded:
                state[index] = "done"
                order.append(index)
                continue
            if state.get(index):
                continue
            state[index] = "open"
            stack.append((index, True))
            for mother in event[index].motherList():
                if mother > 0 and not state.get(mother):
                    stack.append((mother, False))
    return order


def pythia_event_to_hepmc(event, number: int):
    """Build a GenEvent (GeV, mm) of a whole Pythia8 record, mothers before daughters.

    A particle's production vertex is its first mother's end vertex, placed at
    the particle's production point; mothers without an end vertex join it.
    """
    import pyhepmc

    genevent = pyhepmc.GenEvent(pyhepmc.Units.GEV, pyhepmc.Units.MM)
    genevent.event_number = number
    particles = {}
    for index in _topological_order(event):
        entry = event[index]
        particle = pyhepmc.GenParticle((entry.px(), entry.py(), entry.pz(), entry.e()), entry.id(), entry.statusHepMC())
        particle.generated_mass = entry.m()
        mothers = [m for m in entry.motherList() if m > 0]
        if not mothers:
            genevent.add_particle(particle)
        else:
            first = particles[mothers[0]]
            vertex = first.end_vertex
            if vertex is None:
                vertex = pyhepmc.GenVertex((entry.xProd(), entry.yProd(), entry.zProd(), entry.tProd()))
                genevent.add_vertex(vertex)
                for mother in mothers:
                    if particles[mother].end_vertex is None:
                        vertex.add_particle_in(particles[mother])
            vertex.add_particle_out(particle)
        particles[index] = particle
    return genevent


def write_pythia_hepmc(path, n_events: int, seed: int) -> list[dict[str, np.ndarray]]:
    """Generate ttbar events at 7 TeV with Pythia8, write them as HepMC3 and return their GEN.

    Returns:
        per event, the visible final-state particles as Pythia stores them: pt, eta,
        phi, vertices (converted to cm), pdgid, and the event number.
    """
    import pythia8mc
    import pyhepmc

    pythia = pythia8mc.Pythia("", False)
    for setting in PYTHIA_SETTINGS + (f"Random:seed = {seed}",):
        assert pythia.readString(setting), setting
    assert pythia.init()

    expected = []
    with pyhepmc.open(path, "w") as output:
        for number in range(n_events):
            assert pythia.next()
            event = pythia.event
            output.write(pythia_event_to_hepmc(event, 100 + number))

            final = [event[i] for i in range(event.size()) if event[i].isFinal() and event[i].isVisible()]
            expected.append({
                "event_number": 100 + number,
                "pt": np.array([p.pT() for p in final]),
                "eta": np.array([p.eta() for p in final]),
                "phi": np.array([p.phi() for p in final]),
                "vx": np.array([p.xProd() / 10 for p in final]),
                "vy": np.array([p.yProd() / 10 for p in final]),
                "vz": np.array([p.zProd() / 10 for p in final]),
                "pdgid": np.array([p.id() for p in final]),
            })
    return expected
