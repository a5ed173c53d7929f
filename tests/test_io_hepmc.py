"""HepMC3 ASCII: GEN events for and from generators (plain and gzip)."""

from __future__ import annotations

import gzip
import logging
import shutil

import awkward as ak
import numpy as np
import pyhepmc
import pytest

from helpers_io import assert_same_events, random_events, write_pythia_hepmc
from parnassus.core import events as ev
from parnassus.core.io import InputReport, count_events, detect_format, iter_events, read_events, write_events
from parnassus.core.io.hepmc import STABLE_MASSES_GEV
from parnassus.exceptions import InvalidInputError

PION_MASS = 0.13957039  # GeV, PDG 2024


@pytest.fixture(scope="module")
def pythia_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("pythia") / "ttbar.hepmc3"
    expected = write_pythia_hepmc(path, n_events=3, seed=11)
    return path, expected


def _raw_events(path):
    with pyhepmc.open(path) as file:
        return list(file)


@pytest.mark.parametrize("name", ["gen.hepmc", "gen.hepmc3", "gen.hepmc.gz"])
def test_round_trip(tmp_path, name):
    events = random_events(20, seed=31, with_pfc=False, with_pdgid=True)
    path = tmp_path / name
    write_events(events, path)

    assert count_events(path) == 20
    assert_same_events(read_events(path), events)
    if name.endswith(".gz"):
        with open(path, "rb") as stream:
            assert stream.read(2) == b"\x1f\x8b"


def test_gzip_found_by_content(tmp_path):
    events = random_events(5, seed=32, with_pfc=False, with_pdgid=True)
    path = tmp_path / "gen.hepmc.gz"
    write_events(events, path)
    renamed = tmp_path / "gen.hepmc"
    shutil.copy(path, renamed)
    assert detect_format(renamed) == "hepmc"
    assert_same_events(read_events(renamed), events)


def test_class_only_events_get_ids_and_masses(tmp_path):
    events = random_events(15, seed=33, with_pfc=False)
    path = tmp_path / "classes.hepmc"
    write_events(events, path)

    back = read_events(path)
    assert ak.flatten(back.gen["class"]).tolist() == ak.flatten(events.gen["class"]).tolist()
    np.testing.assert_array_equal(ak.flatten(back.gen.pt), ak.flatten(events.gen.pt))

    cls = ak.to_numpy(ak.flatten(events.gen["class"]))
    pdgid = ak.to_numpy(ak.flatten(back.gen.pdgid))
    assert set(np.abs(pdgid[cls == 0])) == {211}
    assert set(np.abs(pdgid[cls == 1])) == {11}
    assert set(pdgid[cls == 3]) == {130}
    assert set(pdgid[cls == 4]) == {22}
    # the charge signs alternate, so both signs of pions appear
    assert set(np.sign(pdgid[cls == 0])) == {-1, 1}

    for event in _raw_events(path):
        particles = event.numpy.particles
        final = np.asarray(particles.status) == 1
        p2 = np.asarray(particles.px) ** 2 + np.asarray(particles.py) ** 2 + np.asarray(particles.pz) ** 2
        mass = np.sqrt(np.maximum(np.asarray(particles.e) ** 2 - p2, 0))
        pids = np.abs(np.asarray(particles.pid))
        pions = final & (pids == 211)
        np.testing.assert_allclose(mass[pions], PION_MASS, rtol=1e-6, atol=1e-6)
        photons = final & (pids == 22)
        np.testing.assert_allclose(mass[photons], 0, atol=1e-3)


def test_masses_from_pdgid(tmp_path):
    counts = np.array([4])
    pdgid = np.array([2212, -321, 13, 2112])
    cls = ev.pdgid_to_class(pdgid)
    ones = ak.unflatten(np.array([5.0, 6.0, 7.0, 8.0]), counts)
    zeros = ak.unflatten(np.zeros(4), counts)
    gen = ev.make_particles(ones, zeros, zeros, zeros, zeros, zeros, ak.unflatten(cls, counts), ak.unflatten(pdgid, counts))
    path = tmp_path / "masses.hepmc"
    write_events(ev.make_events(gen), path)

    (event,) = _raw_events(path)
    final = [p for p in event.particles if p.status == 1]
    for particle in final:
        expected = STABLE_MASSES_GEV[abs(particle.pid)]
        momentum = particle.momentum
        mass = np.sqrt(max(momentum.e**2 - momentum.px**2 - momentum.py**2 - momentum.pz**2, 0.0))
        assert mass == pytest.approx(expected, rel=1e-6)
        assert particle.generated_mass == pytest.approx(expected, rel=1e-12)


def test_one_vertex_per_production_point(tmp_path):
    counts = np.array([5])
    vz = ak.unflatten(np.array([1.0, 1.0, 2.5, 1.0, 2.5]), counts)
    zeros = ak.unflatten(np.zeros(5), counts)
    pt = ak.unflatten(np.arange(1.0, 6.0), counts)
    cls = ak.unflatten(np.zeros(5, dtype=int), counts)
    path = tmp_path / "vertices.hepmc"
    write_events(ev.make_events(ev.make_particles(pt, zeros, zeros, zeros, zeros, vz, cls)), path)

    (event,) = _raw_events(path)
    assert len(event.vertices) == 2
    positions = sorted(v.position.z for v in event.vertices)
    assert positions == pytest.approx([10.0, 25.0])  # cm -> mm
    for vertex in event.vertices:
        assert len(vertex.particles_in) == 1
        assert vertex.particles_in[0].status == 11
        assert all(p.status == 1 for p in vertex.particles_out)
    assert not any(p.status == 4 for p in event.particles)  # no beam particles

    assert_same_events(read_events(path), ev.make_events(ev.make_particles(pt, zeros, zeros, zeros, zeros, vz, cls)))


def test_pythia_ttbar_file_is_read(pythia_file):
    path, expected = pythia_file
    back = read_events(path)
    assert len(back) == len(expected)

    for event, truth in zip(back, expected):
        assert event.event_number == truth["event_number"]
        assert len(event.gen) == len(truth["pt"])
        order = np.argsort(ak.to_numpy(event.gen.pt))
        truth_order = np.argsort(truth["pt"])
        for field in ("pt", "eta", "phi", "vx", "vy", "vz"):
            np.testing.assert_allclose(
                ak.to_numpy(event.gen[field])[order], truth[field][truth_order], rtol=2e-7, atol=1e-7, err_msg=field
            )
        np.testing.assert_array_equal(ak.to_numpy(event.gen.pdgid)[order], truth["pdgid"][truth_order])
        np.testing.assert_array_equal(
            ak.to_numpy(event.gen["class"])[order], ev.pdgid_to_class(truth["pdgid"][truth_order])
        )
    # The beam spot is spread by 40 mm in z, so vertices in cm lie within about 15 cm.
    vz_max = np.max(np.abs(ak.to_numpy(ak.flatten(back.gen.vz))))
    assert 0.5 < vz_max < 30


def test_pythia_neutrinos_dropped_and_counted(pythia_file):
    path, _ = pythia_file
    report = InputReport(str(path))
    read_events(path, report=report)
    raw = _raw_events(path)
    n_neutrinos = sum(
        int(np.sum((np.asarray(e.numpy.particles.status) == 1) & np.isin(np.abs(e.numpy.particles.pid), [12, 14, 16])))
        for e in raw
    )
    assert n_neutrinos > 0  # ttbar events have semileptonic decays in practice
    assert report.invisible_dropped == n_neutrinos
    assert report.zero_pt_dropped == 0


def test_units_mev_and_cm(tmp_path):
    event = pyhepmc.GenEvent(pyhepmc.Units.MEV, pyhepmc.Units.CM)
    event.event_number = 5
    vertex = pyhepmc.GenVertex((0.1, 0.2, 3.0, 0.0))
    incoming = pyhepmc.GenParticle((0.0, 0.0, 0.0, 5000.0), 23, 2)
    event.add_particle(incoming)
    vertex.add_particle_in(incoming)
    vertex.add_particle_out(pyhepmc.GenParticle((3000.0, 4000.0, 0.0, 5002.0), 211, 1))
    event.add_vertex(vertex)
    path = tmp_path / "units.hepmc"
    with pyhepmc.open(path, "w") as file:
        file.write(event)

    back = read_events(path)
    assert back.gen.pt.tolist() == [[pytest.approx(5.0)]]
    assert back.gen.vz.tolist() == [[pytest.approx(3.0)]]
    assert back.gen.vx.tolist() == [[pytest.approx(0.1)]]
    assert back.event_number.tolist() == [5]


def test_event_without_final_state_particles(tmp_path):
    good = pyhepmc.GenEvent(pyhepmc.Units.GEV, pyhepmc.Units.MM)
    good.event_number = 1
    good.add_particle(pyhepmc.GenParticle((1.0, 0.0, 0.0, 1.0), 22, 1))
    bad = pyhepmc.GenEvent(pyhepmc.Units.GEV, pyhepmc.Units.MM)
    bad.event_number = 77
    bad.add_particle(pyhepmc.GenParticle((0.0, 0.0, 3500.0, 3500.0), 2212, 4))
    path = tmp_path / "nofinal.hepmc"
    with pyhepmc.open(path, "w") as file:
        file.write(good)
        file.write(bad)

    with pytest.raises(InvalidInputError, match=r"HepMC3 event 77 \(entry 1\) of .*nofinal.hepmc has no final-state"):
        read_events(path)


def test_event_without_particles(tmp_path):
    good = pyhepmc.GenEvent(pyhepmc.Units.GEV, pyhepmc.Units.MM)
    good.event_number = 1
    good.add_particle(pyhepmc.GenParticle((1.0, 0.0, 0.0, 1.0), 22, 1))
    empty = pyhepmc.GenEvent(pyhepmc.Units.GEV, pyhepmc.Units.MM)
    empty.event_number = 2
    path = tmp_path / "noparticles.hepmc"
    with pyhepmc.open(path, "w") as file:
        file.write(empty)
        file.write(good)

    with pytest.raises(InvalidInputError, match=r"HepMC3 event 2 \(entry 0\) .* has no particles"):
        read_events(path)


def test_truncated_file(tmp_path):
    events = random_events(4, seed=34, with_pfc=False)
    path = tmp_path / "full.hepmc"
    write_events(events, path)
    lines = path.read_text().splitlines(keepends=True)
    cut = [i for i, line in enumerate(lines) if line.startswith("E ")][2] + 3
    truncated = tmp_path / "truncated.hepmc"
    truncated.write_text("".join(lines[:cut]))

    with pytest.raises(InvalidInputError, match=r"event 1006 \(entry 2\) .* could not be parsed"):
        read_events(truncated)


def test_events_without_gen_are_left_out_when_written(tmp_path, caplog):
    events = random_events(6, seed=35, with_pfc=False, min_particles=0)
    counts = ak.num(events.gen).to_numpy()
    events = ev.make_events(events.gen[counts > 0], None, events.event_number[counts > 0])
    empty = ev.make_events(events.gen[:1, :0], None, [999])
    mixed = ak.concatenate([events[:2], empty, events[2:]])
    path = tmp_path / "mixed.hepmc"
    with caplog.at_level(logging.WARNING):
        write_events(mixed, path)
    assert "left out 1 events without GEN particles" in caplog.text
    assert_same_events(read_events(path), events)


def test_pfc_not_written(tmp_path, caplog):
    events = random_events(3, seed=36, with_pdgid=True)
    path = tmp_path / "withpfc.hepmc"
    with caplog.at_level(logging.WARNING):
        write_events(events, path)
    assert "PFCs are not written" in caplog.text
    back = read_events(path)
    assert ak.fields(back) == ["gen", "event_number"]
    with pytest.raises(InvalidInputError, match="GEN particles only"):
        read_events(path, require_pfc=True)


def test_chunks(tmp_path):
    events = random_events(11, seed=37, with_pfc=False, with_pdgid=True)
    path = tmp_path / "chunks.hepmc.gz"
    write_events(events, path)
    chunks = list(iter_events(path, step_size=4))
    assert [len(c) for c in chunks] == [4, 4, 3]
    assert_same_events(ak.concatenate(chunks), events)
    assert_same_events(read_events(path, entry_start=3, entry_stop=9), events[3:9])


def test_plain_and_gzip_files_match(tmp_path):
    events = random_events(4, seed=38, with_pfc=False, with_pdgid=True)
    write_events(events, tmp_path / "a.hepmc")
    write_events(events, tmp_path / "a.hepmc.gz")
    with gzip.open(tmp_path / "a.hepmc.gz", "rt") as stream:
        assert stream.read() == (tmp_path / "a.hepmc").read_text()


def test_particles_without_vertex_position(tmp_path):
    """A particle without production vertex, or from a vertex without position, is at the origin."""
    event = pyhepmc.GenEvent(pyhepmc.Units.GEV, pyhepmc.Units.MM)
    event.event_number = 3
    event.add_particle(pyhepmc.GenParticle((1.0, 1.0, 0.0, 2.0), 211, 1))
    incoming = pyhepmc.GenParticle((0.0, 2.0, 1.0, 3.0), 310, 2)
    event.add_particle(incoming)
    vertex = pyhepmc.GenVertex()
    vertex.add_particle_in(incoming)
    vertex.add_particle_out(pyhepmc.GenParticle((0.0, 2.0, 1.0, 3.0), 22, 1))
    event.add_vertex(vertex)
    displaced = pyhepmc.GenVertex((1.0, 2.0, 30.0, 0.0))
    mother = pyhepmc.GenParticle((0.0, 0.0, 5.0, 6.0), 3122, 2)
    event.add_particle(mother)
    displaced.add_particle_in(mother)
    displaced.add_particle_out(pyhepmc.GenParticle((0.0, -1.0, 5.0, 6.0), 2212, 1))
    event.add_vertex(displaced)
    path = tmp_path / "novertex.hepmc"
    with pyhepmc.open(path, "w") as file:
        file.write(event)

    back = read_events(path)
    assert back.gen.pdgid.tolist() == [[211, 22, 2212]]
    assert back.gen.vx.tolist() == [[0.0, 0.0, pytest.approx(0.1)]]
    assert back.gen.vz.tolist() == [[0.0, 0.0, pytest.approx(3.0)]]
    assert back.gen["class"].tolist() == [[0, 4, 0]]


def test_particle_along_beam_dropped_and_logged(tmp_path, caplog):
    event = pyhepmc.GenEvent(pyhepmc.Units.GEV, pyhepmc.Units.MM)
    event.event_number = 8
    event.add_particle(pyhepmc.GenParticle((1.0, 1.0, 0.0, 2.0), 211, 1))
    event.add_particle(pyhepmc.GenParticle((0.0, 0.0, 100.0, 100.0), 2212, 1))
    event.add_particle(pyhepmc.GenParticle((0.5, 0.0, 1.0, 2.0), 14, 1))
    path = tmp_path / "beam.hepmc"
    with pyhepmc.open(path, "w") as file:
        file.write(event)

    report = InputReport(str(path))
    with caplog.at_level(logging.WARNING):
        back = read_events(path, report=report)
    assert back.gen.pdgid.tolist() == [[211]]
    assert report.zero_pt_dropped == 1
    assert report.invisible_dropped == 1
    assert "left out 1 final-state particles with pT = 0" in caplog.text
    assert "entry 0 (event number 8)" in caplog.text
