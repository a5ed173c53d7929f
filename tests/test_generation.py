"""Tests of Pythia 8 event generation: GEN record, physics, seeds, parallel jobs, CLI.

Every test runs the real Pythia 8 (pythia8mc) on a few to a few hundred events.
Reference values of the physics checks were measured once with larger samples
(seed 101) and are stated next to each check with its tolerance.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import awkward as ak
import numpy as np
import pytest

from parnassus.cli import main
from parnassus.core import events as ev
from parnassus.core.io import read_events
from parnassus.exceptions import InvalidInputError, UnknownFormatError
from parnassus.generation import generate_events, generate_file
from parnassus.generation.gen_record import gen_particles
from parnassus.generation.processes import BEAM_SPOT_CENTRE_CM, BEAM_SPOT_SIGMA_XY_CM, BEAM_SPOT_SIGMA_Z_CM
from parnassus.generation.seeding import MAX_EVENTS_PER_SEED, MAX_SEED, plan_blocks, pythia_seed

pytest.importorskip("pythia8mc")

PI32 = np.float32(np.pi)

# Final-state particles that may reach GEN with tau0Max = 10 mm: stable leptons and
# photons, charged pions and kaons, K0L and K0S (c*tau = 26.8 mm), nucleons, and
# the weakly decaying hyperons (c*tau 24-87 mm: Lambda, Sigma+-, Xi0, Xi-, Omega-).
LONG_LIVED = {11, 13, 22, 211, 321, 130, 310, 2212, 2112, 3122, 3222, 3112, 3322, 3312, 3334}


@pytest.fixture(scope="module")
def minbias():
    return generate_events("minbias", 400, seed=7)


@pytest.fixture(scope="module")
def ttbar():
    return generate_events("ttbar", 40, seed=11)


@pytest.fixture(scope="module")
def h4l():
    return generate_events("h4l", 60, seed=13)


def flat(array) -> np.ndarray:
    return ak.to_numpy(ak.flatten(array))


# --- the GEN record ---------------------------------------------------------


@pytest.mark.parametrize("sample", ["minbias", "ttbar"])
def test_gen_cuts_hold(sample, request):
    gen = request.getfixturevalue(sample).gen
    assert ak.sum(ak.num(gen)) > 0
    assert flat(gen.pt).min() > 0.25
    assert np.abs(flat(gen.eta)).max() < 2.7


@pytest.mark.parametrize("sample", ["minbias", "ttbar"])
def test_gen_has_no_neutrinos(sample, request):
    pdgid = np.abs(flat(request.getfixturevalue(sample).gen.pdgid))
    assert not np.isin(pdgid, [12, 14, 16]).any()


@pytest.mark.parametrize("sample", ["minbias", "ttbar"])
def test_gen_classes_follow_pdgid(sample, request):
    gen = request.getfixturevalue(sample).gen
    cls = flat(gen["class"])
    assert cls.dtype == np.int8
    assert set(np.unique(cls)) <= {0, 1, 2, 3, 4}
    np.testing.assert_array_equal(cls, ev.pdgid_to_class(flat(gen.pdgid)))


@pytest.mark.parametrize("sample", ["minbias", "ttbar"])
def test_gen_phi_range(sample, request):
    phi = flat(request.getfixturevalue(sample).gen.phi)
    assert phi.dtype == np.float32
    assert phi.min() > -PI32
    assert phi.max() <= PI32


def test_gen_sorted_by_pt(ttbar):
    pt = ttbar.gen.pt
    assert ak.all(pt[:, :-1] >= pt[:, 1:])


def test_gen_fields_and_event_numbers(ttbar):
    assert ak.fields(ttbar) == ["gen", "event_number"]
    assert ak.fields(ttbar.gen) == [*ev.PARTICLE_FIELDS, ev.PDGID_FIELD]
    np.testing.assert_array_equal(ak.to_numpy(ttbar.event_number), 11 * MAX_EVENTS_PER_SEED + np.arange(40))


def test_long_lived_hadrons_stay_undecayed(minbias):
    pdgid = flat(minbias.gen.pdgid)
    # 400 minimum-bias events hold hundreds of K0S and dozens of Lambdas in |eta| < 2.7.
    assert np.sum(pdgid == 310) > 20
    assert np.sum(np.abs(pdgid) == 3122) > 5
    assert not np.any(pdgid == 111)
    assert set(np.unique(np.abs(pdgid))) <= LONG_LIVED


def per_event_vertex(events, field: str) -> np.ndarray:
    """Median vertex coordinate of each event with at least 3 GEN particles (cm)."""
    gen = events.gen[ak.num(events.gen) >= 3]
    return np.array([np.median(values) for values in ak.to_list(gen[field])])


def test_beam_spot_z(minbias):
    # The median vz of an event is its primary vertex: most particles come from it.
    vz = per_event_vertex(minbias, "vz")
    n = len(vz)
    assert n > 300
    # Tolerances: 4 standard errors, sigma / sqrt(n) for the mean and sigma / sqrt(2 n)
    # for the standard deviation of a Gaussian sample (about 0.26 cm and 0.19 cm here).
    assert abs(vz.mean() - BEAM_SPOT_CENTRE_CM[2]) < 4 * BEAM_SPOT_SIGMA_Z_CM / np.sqrt(n)
    assert abs(vz.std() - BEAM_SPOT_SIGMA_Z_CM) < 4 * BEAM_SPOT_SIGMA_Z_CM / np.sqrt(2 * n)


@pytest.mark.parametrize("axis", [0, 1])
def test_beam_spot_transverse(minbias, axis):
    values = per_event_vertex(minbias, ("vx", "vy")[axis])
    n = len(values)
    sigma = BEAM_SPOT_SIGMA_XY_CM  # 22.4 um
    # Tolerances: 4 standard errors, as for z (about 4.7 um and 3.4 um here).
    assert abs(values.mean() - BEAM_SPOT_CENTRE_CM[axis]) < 4 * sigma / np.sqrt(n)
    assert abs(values.std() - sigma) < 4 * sigma / np.sqrt(2 * n)


def test_ttbar_multiplicity_and_ht(ttbar):
    # Reference (2000 events, seed 101): N = 186.6 per event (standard deviation 55.4),
    # HT = 433 GeV (standard deviation 158 GeV). Tolerance: 4 standard errors of the mean.
    quantities = ev.event_quantities(ttbar.gen)
    n = len(ttbar)
    assert abs(quantities["n"].mean() - 186.6) < 4 * 55.4 / np.sqrt(n)
    assert abs(quantities["ht"].mean() - 433.0) < 4 * 158.0 / np.sqrt(n)


def four_leptons(events, pt_min: float = 3.0):
    gen = events.gen
    leptons = gen[((gen["class"] == int(ev.ParticleClass.ELECTRON)) | (gen["class"] == int(ev.ParticleClass.MUON))) & (gen.pt > pt_min)]
    return leptons[ak.num(leptons) >= 4][:, :4]


def test_h4l_has_four_leptons(h4l):
    # Reference (2000 events, seed 101): 71 % of the events have 4 leptons with
    # pT > 3 GeV in |eta| < 2.7. Tolerance: 4 binomial standard deviations.
    fraction = len(four_leptons(h4l)) / len(h4l)
    assert abs(fraction - 0.71) < 4 * np.sqrt(0.71 * 0.29 / len(h4l))


def test_h4l_leptons_come_from_z_pairs(h4l):
    leptons = four_leptons(h4l)
    # Two opposite-charge pairs of e or mu make the PDG ids cancel. Reference: 99 % of
    # the events (431 events, seed 101). Photons radiated away rarely cost a lepton.
    balanced = ak.to_numpy(ak.sum(leptons.pdgid, axis=1)) == 0
    assert balanced.mean() > 0.9
    assert set(np.unique(np.abs(flat(leptons.pdgid)))) <= {11, 13}


def test_h4l_mass_peak(h4l):
    leptons = four_leptons(h4l)
    px = ak.sum(leptons.pt * np.cos(leptons.phi), axis=1)
    py = ak.sum(leptons.pt * np.sin(leptons.phi), axis=1)
    pz = ak.sum(leptons.pt * np.sinh(leptons.eta), axis=1)
    energy = ak.sum(leptons.pt * np.cosh(leptons.eta), axis=1)
    mass = np.sqrt(ak.to_numpy(energy**2 - px**2 - py**2 - pz**2))
    # Reference (seed 101): median 124.9 GeV. Radiated photons pull a tail below 125 GeV.
    assert abs(np.median(mass) - 125.0) < 2.0


def particle(pdgid, status, px, py, pz, vertex_mm=(1.0, 2.0, 30.0)):
    vertex = None if vertex_mm is None else dict(zip(("px", "py", "pz", "e"), (*vertex_mm, 0.0)))
    momentum = {"px": px, "py": py, "pz": pz, "e": float(np.sqrt(px**2 + py**2 + pz**2))}
    return {"id": pdgid, "status": status, "p": momentum, "vProd": vertex}


def test_gen_record_edge_cases():
    eta_edge = np.sinh(2.7 - 1e-9)  # rounds to float32(2.7): outside |eta| < 2.7
    batch = ak.Array({"prt": [
        [
            particle(2212, -12, 0.0, 0.0, 3500.0),           # beam: not final state
            particle(211, 1, 0.5, 0.0, 0.0, vertex_mm=None),  # vertex at the origin
            particle(22, 1, -2.0, -0.0, 0.0),                 # phi = -pi, stored as +pi
            particle(14, 1, 5.0, 0.0, 0.0),                   # neutrino
            particle(11, 1, 0.0, 3.0, 3.0 * eta_edge),        # |eta| at the edge
            particle(13, 1, 0.2500000001, 0.0, 0.0),          # pT rounds to 0.25: outside
            particle(2112, 1, 0.0, -1.0, 1.0),
        ],
        [particle(111, -2, 1.0, 0.0, 0.0)],                   # no GEN particle left
    ]})
    gen = gen_particles(batch)

    assert ak.num(gen).tolist() == [3, 0]
    assert gen.pdgid[0].tolist() == [22, 2112, 211]
    assert gen["class"][0].tolist() == [4, 3, 0]
    assert gen.phi[0, 0] == PI32
    assert gen.pt[0].tolist() == pytest.approx([2.0, 1.0, 0.5])
    assert gen.vz[0].tolist() == pytest.approx([3.0, 3.0, 0.0])
    assert gen.vx[0].tolist() == pytest.approx([0.1, 0.1, 0.0])


# --- seeds, ranges and parallel jobs ----------------------------------------


def test_same_seed_same_events():
    first = generate_events("ttbar", 5, seed=21)
    second = generate_events("ttbar", 5, seed=21)
    assert ak.array_equal(first, second, equal_nan=False, dtype_exact=True, check_parameters=True)


def test_different_seeds_differ():
    first = generate_events("ttbar", 5, seed=21)
    second = generate_events("ttbar", 5, seed=22)
    assert not np.array_equal(flat(first.gen.pt)[:50], flat(second.gen.pt)[:50])
    assert set(ak.to_numpy(first.event_number)).isdisjoint(ak.to_numpy(second.event_number))


def test_ranges_and_steps_give_same_events():
    whole = generate_events("ttbar", 12, seed=3, block_size=5, step_size=12)
    tail = generate_events("ttbar", 5, seed=3, first_event=7, block_size=5, step_size=2)
    assert ak.array_equal(whole[7:], tail)


def test_jobs_give_same_events():
    serial = generate_events("ttbar", 20, seed=4, block_size=5)
    parallel = generate_events("ttbar", 20, seed=4, block_size=5, jobs=2)
    rerun = generate_events("ttbar", 20, seed=4, block_size=5, jobs=2)
    assert ak.array_equal(parallel, rerun)
    assert ak.array_equal(parallel, serial)


def test_block_plan_and_pythia_seeds():
    tasks = plan_blocks(1500, 1700, 1000)
    assert [(t.block, t.skip, t.count, t.first_event) for t in tasks] == [(1, 500, 500, 1500), (2, 0, 1000, 2000), (3, 0, 200, 3000)]
    assert pythia_seed(0, 0) == 1
    assert pythia_seed(MAX_SEED, 9999) == 900_000_000


# --- input errors -----------------------------------------------------------


def test_unknown_process_lists_processes():
    with pytest.raises(ValueError, match="unknown process 'zz'.*ttbar, h4l, qcd-470-600, qcd-600-800, minbias"):
        generate_events("zz", 1, seed=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_events": 0}, "number of events must be at least 1"),
        ({"n_events": -5}, "number of events must be at least 1"),
        ({"seed": -1}, "seed -1 is out of range"),
        ({"seed": MAX_SEED + 1}, f"seed {MAX_SEED + 1} is out of range"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"jobs": 0}, "number of jobs must be a positive integer"),
        ({"step_size": 0}, "step size must be a positive integer"),
        ({"first_event": MAX_EVENTS_PER_SEED - 1, "n_events": 2}, "exceed the 10000000 events"),
    ],
)
def test_invalid_arguments_rejected(kwargs, message):
    arguments = {"process": "ttbar", "n_events": 1, "seed": 1, **kwargs}
    with pytest.raises(InvalidInputError, match=message):
        generate_events(**arguments)


def test_unknown_suffix_rejected_before_generation(tmp_path):
    with pytest.raises(UnknownFormatError, match="cannot tell the format"):
        generate_file(tmp_path / "events.txt", "ttbar", 1, seed=1)
    assert list(tmp_path.iterdir()) == []


# --- the command line -------------------------------------------------------


def test_cli_writes_the_generated_events(tmp_path):
    output = tmp_path / "ttbar.parquet"
    code = main(["generate", "--process", "ttbar", "--events", "6", "--seed", "9", "-o", str(output), "--step-size", "4"])
    assert code == 0
    written = read_events(output)
    assert ak.array_equal(written, generate_events("ttbar", 6, seed=9))


def test_cli_hepmc_output(tmp_path):
    output = tmp_path / "ttbar.hepmc3"
    assert main(["generate", "--process", "ttbar", "--events", "3", "--seed", "9", "-o", str(output)]) == 0
    read_back = read_events(output)
    assert len(read_back) == 3
    assert ak.sum(ak.num(read_back.gen)) == ak.sum(ak.num(generate_events("ttbar", 3, seed=9).gen))


def test_cli_rejects_unknown_process(capsys):
    with pytest.raises(SystemExit) as info:
        main(["generate", "--process", "zz", "--events", "1", "--seed", "1", "-o", "x.root"])
    assert info.value.code == 2
    assert "invalid choice: 'zz'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--events", "0", "--seed", "1", "-o", "out.root"], "number of events must be at least 1"),
        (["--events", "2", "--seed", "90000", "-o", "out.root"], "seed 90000 is out of range"),
        (["--events", "2", "--seed", "1", "-o", "out.txt"], "cannot tell the format"),
        (["--events", "2", "--seed", "1", "-o", "out.root", "--jobs", "0"], "number of jobs must be"),
    ],
)
def test_cli_input_errors(tmp_path, caplog, arguments, message):
    arguments = [a if not a.startswith("out.") else str(tmp_path / a) for a in arguments]
    assert main(["generate", "--process", "ttbar", *arguments]) == 1
    assert message in caplog.text
    assert list(tmp_path.iterdir()) == []


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("jobs", [1, 2])
def test_cli_interrupt_leaves_no_output(tmp_path, jobs):
    output = tmp_path / "ttbar.root"
    command = [sys.executable, "-m", "parnassus.cli", "generate", "--process", "ttbar", "--events", "100000",
               "--seed", "1", "-o", str(output), "--jobs", str(jobs), "--step-size", "5"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        if jobs == 1:
            # Interrupt after the first chunk is written to the temporary file.
            assert wait_for(lambda: any(tmp_path.iterdir()), timeout=120)
        else:
            # Interrupt while the workers generate their first blocks.
            time.sleep(4.0)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    assert os.listdir(tmp_path) == []
