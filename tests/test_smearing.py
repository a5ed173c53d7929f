"""Tests of the smearing backend on synthetic (GEN, PFC) pairs whose detector response is known.

The synthetic detector: charged hadrons are reconstructed with efficiency 0.9,
all other GEN particles always; 20 % of photons become neutral hadrons; pT is
smeared log-normally with sigma 0.1 (mean 0), eta and phi with Gaussians of
width 0.01, the vertex of charged PFCs with 0.001 cm (x, y) and 0.01 cm (z),
neutral PFCs carry the vertex (0, 0, 0); and Poisson(5) unmatched PFCs per
event (70 % charged hadrons, 30 % photons, pT = 1 GeV + exponential(1 GeV)) are
added. The card's PFC selection (pT > 1 GeV, |eta| < 2.7) then removes the
GEN particles smeared below 1 GeV.

Physics checks are made on the plateau, GEN pT > 2 GeV, where the PFC pT
threshold lies more than 6 sigma below every GEN particle, so the truth is
exactly the numbers above.
"""

from __future__ import annotations

import shutil

import awkward as ak
import numpy as np
import pytest
import yaml
from scipy import stats

from parnassus.backends.smearing import SmearingBackend, moments, pooling
from parnassus.backends.smearing.binning import Binning
from parnassus.backends.smearing.config import SmearingConfig
from parnassus.backends.smearing.fit import SmearingAccumulator, fit_tables
from parnassus.backends.smearing.model import LOST, SmearingModel
from parnassus.backends.smearing.sampling import truncated_normal
from parnassus.core import events as ev
from parnassus.core import plugins
from parnassus.core.checkpoint import write_model_yaml
from parnassus.core.detector import DetectorCard
from parnassus.core.io import write_events
from parnassus.exceptions import CheckpointError, InvalidInputError, ParnassusError

CARD = DetectorCard(name="synthetic-smearing", description="synthetic detector with a known response")

CHARGED_EFFICIENCY = 0.9
PHOTON_TO_NEUTRAL_HADRON = 0.2
PT_SIGMA = 0.1
ANGLE_SIGMA = 0.01
VZ_SIGMA_CM = 0.01
MEAN_UNMATCHED = 5.0

#: GEN pT (GeV) above which the PFC threshold of 1 GeV, 6.4 sigma of the pT smearing below, plays no role.
PLATEAU_PT_GEV = 1.9

N_TRAINING_EVENTS = 3000


def synthetic_events(n_events: int, seed: int, with_muons: bool = True) -> ak.Array:
    """Return (GEN, PFC) events from the synthetic detector described in the module docstring."""
    rng = np.random.default_rng(seed)
    n_gen = rng.poisson(20, n_events)
    n_gen[:3] = 0  # events without GEN particles
    total = int(n_gen.sum())

    class_fractions = [0.55, 0.03, 0.03, 0.14, 0.25] if with_muons else [0.58, 0.03, 0.0, 0.14, 0.25]
    cls = rng.choice(5, total, p=class_fractions)
    pt = 0.5 * (1 + rng.pareto(1.0, total))  # GeV, a falling spectrum from 0.5 GeV
    pt = np.minimum(pt, 2000.0)
    eta = rng.uniform(-2.5, 2.5, total)
    phi = rng.uniform(-np.pi, np.pi, total)
    vx = rng.normal(0.07, 0.002, total)
    vy = rng.normal(0.03, 0.002, total)
    vz = rng.normal(0.0, 5.0, total)

    lost = (cls == ev.ParticleClass.CHARGED_HADRON) & (rng.random(total) > CHARGED_EFFICIENCY)
    migrated = (cls == ev.ParticleClass.PHOTON) & (rng.random(total) < PHOTON_TO_NEUTRAL_HADRON)
    pfc_cls = np.where(migrated, ev.ParticleClass.NEUTRAL_HADRON, cls)
    charged = pfc_cls <= ev.ParticleClass.MUON
    smeared = {
        "pt": pt * np.exp(rng.normal(0.0, PT_SIGMA, total)),
        "eta": eta + rng.normal(0.0, ANGLE_SIGMA, total),
        "phi": ev.wrap_phi(phi + rng.normal(0.0, ANGLE_SIGMA, total)),
        "vx": np.where(charged, vx + rng.normal(0.0, 0.001, total), 0.0),
        "vy": np.where(charged, vy + rng.normal(0.0, 0.001, total), 0.0),
        "vz": np.where(charged, vz + rng.normal(0.0, VZ_SIGMA_CM, total), 0.0),
        "class": pfc_cls,
    }

    n_unmatched = rng.poisson(MEAN_UNMATCHED, n_events)
    extra = int(n_unmatched.sum())
    extra_cls = rng.choice([ev.ParticleClass.CHARGED_HADRON, ev.ParticleClass.PHOTON], extra, p=[0.7, 0.3])
    extra_charged = extra_cls == ev.ParticleClass.CHARGED_HADRON
    unmatched = {
        "pt": 1.0 + rng.exponential(1.0, extra),
        "eta": rng.uniform(-2.5, 2.5, extra),
        "phi": rng.uniform(-np.pi, np.pi, extra),
        "vx": np.where(extra_charged, 0.07, 0.0),
        "vy": np.where(extra_charged, 0.03, 0.0),
        "vz": np.where(extra_charged, rng.normal(0.0, 5.0, extra), 0.0),
        "class": extra_cls,
    }

    event_of_gen = np.repeat(np.arange(n_events), n_gen)
    event_of_pfc = np.concatenate([event_of_gen[~lost], np.repeat(np.arange(n_events), n_unmatched)])
    order = np.argsort(event_of_pfc, kind="stable")
    pfc_counts = np.bincount(event_of_pfc, minlength=n_events)

    def pfc_field(name):
        return ak.unflatten(np.concatenate([smeared[name][~lost], unmatched[name]])[order], pfc_counts)

    def gen_field(values):
        return ak.unflatten(values, n_gen)

    gen = ev.make_particles(*(gen_field(v) for v in (pt, eta, phi, vx, vy, vz, cls)))
    pfc = ev.make_particles(*(pfc_field(name) for name in ("pt", "eta", "phi", "vx", "vy", "vz", "class")))
    return ev.make_events(gen, pfc, 500 + np.arange(n_events))


def fill(events: ak.Array, binning: Binning) -> SmearingAccumulator:
    """Fill an accumulator from (GEN, PFC) events after the card's preprocessing."""
    accumulator = SmearingAccumulator(binning, CARD, 0.1)
    accumulator.update(CARD.preprocess(events)[0])
    return accumulator


def plateau_bins(binning: Binning) -> np.ndarray:
    return binning.pt_edges[:-1] >= PLATEAU_PT_GEV - 1e-9


def plateau_fraction(accumulator: SmearingAccumulator, gen_class: int, outcome: int) -> float:
    """Fraction of plateau GEN particles of a class with a given outcome, from the raw counts."""
    counts = accumulator.outcome_counts[gen_class][plateau_bins(accumulator.binning)]
    return float(counts[..., outcome].sum() / counts.sum())


def plateau_resolution(tables, gen_class: int, variable: int) -> tuple[float, float]:
    """Entry-weighted mean of the fitted mean and width of one residual over the same-class plateau cells."""
    plateau = plateau_bins(tables.binning)
    weights = tables.resolution_count[gen_class, gen_class][plateau].astype(float)
    mean = tables.resolution_mean[gen_class, gen_class][plateau][..., variable]
    sigma = tables.resolution_sigma[gen_class, gen_class][plateau][..., variable]
    return float(np.sum(weights * mean) / weights.sum()), float(np.sum(weights * sigma) / weights.sum())


def plateau_resolution_pair(tables, gen_class: int, pfc_class: int) -> tuple[float, float]:
    """Entry-weighted fitted mean and width of log(pT_PFC / pT_GEN) for one class pair on the plateau."""
    plateau = plateau_bins(tables.binning)
    weights = tables.resolution_count[gen_class, pfc_class][plateau].astype(float)
    mean = tables.resolution_mean[gen_class, pfc_class][plateau][..., 0]
    sigma = tables.resolution_sigma[gen_class, pfc_class][plateau][..., 0]
    return float(np.sum(weights * mean) / weights.sum()), float(np.sum(weights * sigma) / weights.sum())


def mean_unmatched(accumulator: SmearingAccumulator) -> float:
    counts = accumulator.multiplicity_counts
    return float((counts @ np.arange(counts.shape[1])).sum() / counts.sum())


@pytest.fixture(scope="module")
def training_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("smearing-data") / "train.parquet"
    write_events(synthetic_events(N_TRAINING_EVENTS, seed=1), path)
    return path


@pytest.fixture(scope="module")
def checkpoint(training_file, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("smearing-checkpoint") / "model"
    return SmearingBackend.train([training_file], CARD, out_dir, preset="tiny", config_overrides={"step_size": 1000})


@pytest.fixture(scope="module")
def model(checkpoint):
    return SmearingBackend.load(checkpoint, CARD)


@pytest.fixture(scope="module")
def fresh_gen():
    """GEN events the model has not seen, preprocessed, without their PFCs."""
    events = CARD.preprocess(synthetic_events(N_TRAINING_EVENTS, seed=2))[0]
    return ev.make_events(events.gen, None, events.event_number)


@pytest.fixture(scope="module")
def sampled(model, fresh_gen):
    return model.sample(fresh_gen, seed=7)


@pytest.fixture(scope="module")
def refit(model, sampled):
    """The sampled (GEN, PFC) pairs measured with the fit's own matching and binning."""
    return fill(sampled[0], model.tables.binning)


@pytest.fixture(scope="module")
def training_fit(model, training_file):
    from parnassus.core.io import read_events

    return fill(read_events(training_file), model.tables.binning)


# --- the fitted tables against the known truth -------------------------------------------


def test_fit_charged_hadron_efficiency(model):
    tables = model.tables
    plateau = plateau_bins(tables.binning)
    counts = tables.outcome_counts[ev.ParticleClass.CHARGED_HADRON][plateau].sum(axis=-1)
    probability = tables.outcome_probability[ev.ParticleClass.CHARGED_HADRON][plateau]
    efficiency = np.sum(counts * (1 - probability[..., LOST])) / counts.sum()
    assert efficiency == pytest.approx(CHARGED_EFFICIENCY, abs=0.02)


def test_fit_other_classes_fully_efficient(model):
    tables = model.tables
    plateau = plateau_bins(tables.binning)
    for cls in (ev.ParticleClass.ELECTRON, ev.ParticleClass.MUON, ev.ParticleClass.NEUTRAL_HADRON):
        counts = tables.outcome_counts[cls][plateau]
        assert counts[..., LOST].sum() / counts.sum() < 0.02, cls.label


def test_fit_photon_migration(model):
    tables = model.tables
    plateau = plateau_bins(tables.binning)
    counts = tables.outcome_counts[ev.ParticleClass.PHOTON][plateau].sum(axis=-1)
    probability = tables.outcome_probability[ev.ParticleClass.PHOTON][plateau][..., ev.ParticleClass.NEUTRAL_HADRON]
    migration = np.sum(counts * probability) / counts.sum()
    assert migration == pytest.approx(PHOTON_TO_NEUTRAL_HADRON, abs=0.02)


def test_fit_pt_resolution(model):
    mean, sigma = plateau_resolution(model.tables, ev.ParticleClass.CHARGED_HADRON, 0)
    assert sigma == pytest.approx(PT_SIGMA, abs=0.01)
    assert mean == pytest.approx(0.0, abs=0.01)


def test_fit_angle_and_vertex_resolution(model):
    tables = model.tables
    ch = ev.ParticleClass.CHARGED_HADRON
    assert plateau_resolution(tables, ch, 1)[1] == pytest.approx(ANGLE_SIGMA, rel=0.1)  # eta
    assert plateau_resolution(tables, ch, 2)[1] == pytest.approx(ANGLE_SIGMA, rel=0.1)  # phi
    assert plateau_resolution(tables, ch, 5)[1] == pytest.approx(VZ_SIGMA_CM, rel=0.1)  # vz
    assert plateau_resolution(tables, ch, 3)[0] == pytest.approx(0.0, abs=2e-4)  # vx bias (cm)


def test_fit_photon_migration_resolution(model):
    # Photons reconstructed as neutral hadrons are smeared like the rest.
    mean, sigma = plateau_resolution_pair(model.tables, ev.ParticleClass.PHOTON, ev.ParticleClass.NEUTRAL_HADRON)
    assert sigma == pytest.approx(PT_SIGMA, abs=0.015)
    assert mean == pytest.approx(0.0, abs=0.015)


def test_fit_unmatched_multiplicity(model):
    tables = model.tables
    expected_per_row = tables.multiplicity_probability @ np.arange(tables.multiplicity_probability.shape[1])
    events_per_row = tables.multiplicity_counts.sum(axis=1)
    mean = np.sum(events_per_row * expected_per_row) / events_per_row.sum()
    assert mean == pytest.approx(MEAN_UNMATCHED, abs=0.15)


def test_fit_unmatched_classes(model):
    per_class = model.tables.unmatched_kinematics_counts.sum(axis=(1, 2))
    fractions = per_class / per_class.sum()
    assert fractions[ev.ParticleClass.CHARGED_HADRON] == pytest.approx(0.7, abs=0.03)
    assert fractions[ev.ParticleClass.PHOTON] == pytest.approx(0.3, abs=0.03)


def test_fit_tables_normalised(model):
    tables = model.tables
    assert np.allclose(tables.outcome_probability.sum(axis=-1), 1.0)
    assert np.allclose(tables.multiplicity_probability.sum(axis=-1), 1.0)
    assert np.all(np.isfinite(tables.resolution_sigma))
    assert np.all(tables.resolution_sigma >= 0)


# --- sampling reproduces what was fitted ------------------------------------------------------


def test_sample_charged_hadron_efficiency(refit):
    lost = plateau_fraction(refit, ev.ParticleClass.CHARGED_HADRON, LOST)
    assert 1 - lost == pytest.approx(CHARGED_EFFICIENCY, abs=0.02)


def test_sample_photon_migration(refit):
    migrated = plateau_fraction(refit, ev.ParticleClass.PHOTON, ev.ParticleClass.NEUTRAL_HADRON)
    assert migrated == pytest.approx(PHOTON_TO_NEUTRAL_HADRON, abs=0.02)


def test_sample_pt_resolution(refit):
    tables = fit_tables(refit, min_entries_efficiency=50, min_entries_resolution=20, min_events_multiplicity=50)
    mean, sigma = plateau_resolution(tables, ev.ParticleClass.CHARGED_HADRON, 0)
    assert sigma == pytest.approx(PT_SIGMA, abs=0.01)
    assert mean == pytest.approx(0.0, abs=0.01)


def test_sample_unmatched_multiplicity(refit):
    assert mean_unmatched(refit) == pytest.approx(MEAN_UNMATCHED, abs=0.2)


def test_sample_efficiency_near_threshold(refit, training_fit):
    # The truncated pT draw keeps the fitted efficiency also where the 1 GeV cut bites.
    binning = refit.binning
    threshold_bins = (binning.pt_edges[:-1] < PLATEAU_PT_GEV) & (binning.pt_edges[1:] > 1.0)
    for cls in ev.ParticleClass:
        sampled = refit.outcome_counts[cls][threshold_bins]
        truth = training_fit.outcome_counts[cls][threshold_bins]
        sampled_efficiency = 1 - sampled[..., LOST].sum() / sampled.sum()
        truth_efficiency = 1 - truth[..., LOST].sum() / truth.sum()
        assert sampled_efficiency == pytest.approx(truth_efficiency, abs=0.03), cls.label


# --- sampling contract -------------------------------------------------------------------------


def test_sample_output_cuts(sampled, fresh_gen):
    events, _ = sampled
    pfc = events.pfc
    pt = ak.to_numpy(ak.flatten(pfc.pt))
    eta = ak.to_numpy(ak.flatten(pfc.eta))
    phi = ak.to_numpy(ak.flatten(pfc.phi))
    assert len(events) == len(fresh_gen)
    assert ak.to_list(events.event_number) == ak.to_list(fresh_gen.event_number)
    assert np.all(pt > 1.0)
    assert np.all(np.abs(eta) < 2.7)
    assert np.all((phi > -np.pi) & (phi <= np.pi))
    assert np.all(ak.num(pfc) <= CARD.max_particles)


def test_sample_classes_and_vertices(sampled):
    pfc = sampled[0].pfc
    cls = ak.to_numpy(ak.flatten(pfc["class"]))
    assert cls.dtype == np.int8
    assert set(np.unique(cls)) <= set(range(5))
    neutral = cls >= ev.ParticleClass.NEUTRAL_HADRON
    for name in ("vx", "vy", "vz"):
        assert np.all(ak.to_numpy(ak.flatten(pfc[name]))[neutral] == 0.0)


def test_sample_sorted_by_pt(sampled):
    pt = sampled[0].pfc.pt
    assert ak.all(pt[:, 1:] <= pt[:, :-1])


def test_sample_report(sampled, fresh_gen):
    report = sampled[1]
    assert report.events == len(fresh_gen)
    assert report.redraws == 0
    assert report.details["gen_particles"] == int(ak.sum(ak.num(fresh_gen.gen)))
    assert report.details["unmatched_added"] > 0
    assert report.details["lost"] > 0


def test_sample_same_seed_same_output(model, fresh_gen):
    first, _ = model.sample(fresh_gen[:200], seed=11)
    second, _ = model.sample(fresh_gen[:200], seed=11)
    assert ak.to_list(first.pfc) == ak.to_list(second.pfc)


def test_sample_other_seed_differs(model, fresh_gen):
    first, _ = model.sample(fresh_gen[:200], seed=11)
    second, _ = model.sample(fresh_gen[:200], seed=12)
    assert ak.to_list(first.pfc.pt) != ak.to_list(second.pfc.pt)


def test_sample_ignores_solver(model, fresh_gen):
    first, _ = model.sample(fresh_gen[:50], seed=3)
    second, _ = model.sample(fresh_gen[:50], seed=3, solver="euler", steps=4)
    assert ak.to_list(first.pfc) == ak.to_list(second.pfc)


def test_sample_small_batches(model, fresh_gen):
    events, report = model.sample(fresh_gen[:100], seed=3, batch_size=7)
    assert len(events) == 100
    assert report.events == 100
    assert np.all(ak.to_numpy(ak.flatten(events.pfc.pt)) > 1.0)


def test_sample_empty_gen_events(model):
    empty = ev.make_particles(*(ak.Array([[]] * 500) for _ in range(7)))
    events, _ = model.sample(ev.make_events(empty), seed=5)
    n_pfc = ak.to_numpy(ak.num(events.pfc))
    assert len(events) == 500
    # Only unmatched PFCs: Poisson(5) in the synthetic detector.
    assert n_pfc.mean() == pytest.approx(MEAN_UNMATCHED, abs=0.5)


def test_sample_no_events(model):
    empty = ev.make_particles(*(ak.Array([[1.0]])[:0] for _ in range(7)))
    events, report = model.sample(ev.make_events(empty), seed=5)
    assert len(events) == 0
    assert report.events == 0


def test_sample_rejects_bad_class(model):
    gen = ev.make_particles(*(ak.Array([[5.0]]) for _ in range(6)), ak.Array([[7]]))
    with pytest.raises(InvalidInputError, match="class"):
        model.sample(ev.make_events(gen), seed=0)


def test_sample_rejects_missing_gen(model):
    with pytest.raises(InvalidInputError, match="gen"):
        model.sample(ak.Array([{"event_number": 1}]), seed=0)


# --- sparse bins and unseen classes -------------------------------------------------------------


def test_pooling_widens_eta_then_pt():
    counts = np.zeros((1, 3, 2, 2))
    counts[0, 1, 0] = [1, 1]  # 2 entries: too few
    counts[0, 1, 1] = [30, 0]  # its |eta| neighbour
    counts[0, 0, 0] = [0, 100]
    pooled, level = pooling.pool_counts(counts, min_entries=10)
    assert pooled[0, 1, 0].tolist() == [31, 1]
    assert level[0, 1, 0] == pooling.ETA_NEIGHBOURS
    # (2, 0) and (2, 1) are empty: all |eta| of pT bins 1-2 hold 32 entries.
    assert pooled[0, 2, 0].tolist() == [31, 1]
    assert level[0, 2, 0] == pooling.PT_NEIGHBOURS
    assert level[0, 0, 0] == pooling.OWN_BIN


def test_moments_combine_exact():
    rng = np.random.default_rng(3)
    parts = [rng.normal(i, 1 + i, 10 + i) for i in range(3)]
    n = np.array([len(p) for p in parts], dtype=float)
    mean = np.array([p.mean() for p in parts])
    m2 = np.array([np.sum((p - p.mean()) ** 2) for p in parts])
    total, pooled_mean, pooled_m2 = moments.combine(n, mean, m2)
    joined = np.concatenate(parts)
    assert total == len(joined)
    assert pooled_mean == pytest.approx(joined.mean())
    assert pooled_m2 == pytest.approx(np.sum((joined - joined.mean()) ** 2))


def test_shell_moments_streaming_exact():
    rng = np.random.default_rng(4)
    values = rng.normal(0.07, 0.001, (5000, 1))  # a beam-spot-like offset with a small spread
    cells = rng.integers(0, 3, 5000)
    shells = moments.ShellMoments(3, 1)
    for part in np.array_split(np.arange(5000), 7):
        shells.add(cells[part], values[part])
    n, mean, m2 = shells.totals()
    for cell in range(3):
        selected = values[cells == cell, 0]
        assert n[cell, 0] == len(selected)
        assert mean[cell, 0] == pytest.approx(selected.mean(), rel=1e-12)
        assert m2[cell, 0] == pytest.approx(np.sum((selected - selected.mean()) ** 2), rel=1e-9)


def test_clipping_ignores_rare_outliers():
    rng = np.random.default_rng(5)
    core = rng.normal(0.0, 0.01, 20000)
    outliers = rng.normal(0.0, 5.0, 20)  # one wrong pair in 1000, as from pileup matches
    values = np.concatenate([core, outliers])[:, None]
    shells = moments.ShellMoments(1, 1)
    shells.add(np.zeros(len(values), dtype=np.int64), values)
    window_moments = moments.windows(shells.n[:, :, 0], shells.mean[:, :, 0], shells.m2[:, :, 0], axis=1)
    _, clipped, _ = moments.clipped_estimate(*window_moments, clip_sigmas=5.0)
    _, unclipped, _ = moments.clipped_estimate(*window_moments, clip_sigmas=0.0)
    assert clipped[0] == pytest.approx(0.01, rel=0.03)
    assert unclipped[0] > 0.1


def test_unseen_gen_class_borrows_all_classes():
    config = SmearingConfig.from_preset("tiny")
    binning = Binning.build(config, CARD)
    accumulator = fill(synthetic_events(300, seed=4, with_muons=False), binning)
    tables = fit_tables(accumulator, min_entries_efficiency=50, min_entries_resolution=20, min_events_multiplicity=50)
    muon = ev.ParticleClass.MUON
    assert np.all(tables.outcome_level[muon] == pooling.OTHER_GROUPS)
    assert np.allclose(tables.outcome_probability[muon].sum(axis=-1), 1.0)

    gen = CARD.preprocess(synthetic_events(50, seed=5))[0]
    events, _ = SmearingModel(CARD, tables).sample(gen, seed=1)
    assert np.all(np.isfinite(ak.to_numpy(ak.flatten(events.pfc.pt))))


def test_truncated_normal_matches_scipy():
    rng = np.random.default_rng(9)
    n = 200_000
    for low, high in ((-1.0, np.inf), (0.5, 2.0), (-np.inf, -1.5), (3.0, np.inf)):
        draws = truncated_normal(rng, np.zeros(n), np.ones(n), np.full(n, low), np.full(n, high))
        reference = stats.truncnorm(low, high)
        assert np.all((draws >= low) & (draws <= high))
        assert draws.mean() == pytest.approx(reference.mean(), abs=0.01)
        assert draws.std() == pytest.approx(reference.std(), abs=0.01)


def test_truncated_normal_far_tail_and_zero_width():
    rng = np.random.default_rng(9)
    draws = truncated_normal(rng, np.zeros(3), np.ones(3), np.array([50.0, -np.inf, 1.0]), np.array([np.inf, -60.0, 2.0]))
    assert draws.tolist() == pytest.approx([50.0, -60.0, draws[2]])
    assert 1.0 <= draws[2] <= 2.0
    fixed = truncated_normal(rng, np.array([0.3, 5.0]), np.zeros(2), np.zeros(2), np.ones(2))
    assert fixed.tolist() == [0.3, 1.0]


# --- checkpoints ---------------------------------------------------------------------------------


def copy_checkpoint(checkpoint, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(checkpoint, target)
    return target


def test_checkpoint_model_yaml(checkpoint):
    info = yaml.safe_load((checkpoint / "model.yaml").read_text())
    assert info["backend"] == "smearing"
    assert info["detector"] == CARD.name
    assert info["preset"] == "tiny"
    assert info["training_data"]["events"] == N_TRAINING_EVENTS
    assert info["binning"]["gen_pt_edges_gev"][0] == pytest.approx(CARD.gen_selection.pt_min)
    assert "command" in info


def test_checkpoint_rejects_other_backend(checkpoint, tmp_path):
    folder = copy_checkpoint(checkpoint, tmp_path)
    info = yaml.safe_load((folder / "model.yaml").read_text())
    info["backend"] = "diffusion"
    write_model_yaml(folder, info)
    with pytest.raises(CheckpointError, match="diffusion"):
        SmearingBackend.load(folder, CARD)


def test_checkpoint_rejects_other_detector(checkpoint):
    other = DetectorCard(name="another-detector", description="")
    with pytest.raises(CheckpointError, match="synthetic-smearing"):
        SmearingBackend.load(checkpoint, other)


def test_checkpoint_rejects_corrupted_tables(checkpoint, tmp_path):
    folder = copy_checkpoint(checkpoint, tmp_path)
    data = bytearray((folder / "tables.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "tables.npz").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted"):
        SmearingBackend.load(folder, CARD)


def test_checkpoint_rejects_missing_tables(checkpoint, tmp_path):
    folder = copy_checkpoint(checkpoint, tmp_path)
    (folder / "tables.npz").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        SmearingBackend.load(folder, CARD)


def rewrite_tables(folder, change):
    """Apply ``change`` to the stored arrays and record the new digest, as a careless edit would."""
    from parnassus.backends.smearing.storage import sha256_of

    with np.load(folder / "tables.npz", allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    change(arrays)
    np.savez(folder / "tables.npz", **arrays)
    info = yaml.safe_load((folder / "model.yaml").read_text())
    info["tables"]["sha256"] = sha256_of(folder / "tables.npz")
    write_model_yaml(folder, info)


def test_checkpoint_rejects_unnormalised_tables(checkpoint, tmp_path):
    folder = copy_checkpoint(checkpoint, tmp_path)
    rewrite_tables(folder, lambda arrays: arrays["outcome_probability"].__imul__(2.0))
    with pytest.raises(CheckpointError, match="sum to 1"):
        SmearingBackend.load(folder, CARD)


def test_checkpoint_rejects_object_arrays(checkpoint, tmp_path):
    folder = copy_checkpoint(checkpoint, tmp_path)
    rewrite_tables(folder, lambda arrays: arrays.__setitem__("outcome_level", np.array([{"a": 1}], dtype=object)))
    with pytest.raises(CheckpointError, match="not a valid"):
        SmearingBackend.load(folder, CARD)


def test_checkpoint_rejects_missing_table(checkpoint, tmp_path):
    folder = copy_checkpoint(checkpoint, tmp_path)
    rewrite_tables(folder, lambda arrays: arrays.pop("resolution_sigma"))
    with pytest.raises(CheckpointError, match="resolution_sigma"):
        SmearingBackend.load(folder, CARD)


# --- training through the Python API and the plugin registry ------------------------------------


def test_train_and_run_through_registry(training_file, tmp_path):
    backend = plugins.load_backend("smearing")
    assert backend is SmearingBackend

    from parnassus.core.io import read_events

    validation = tmp_path / "validation.parquet"
    write_events(synthetic_events(400, seed=3), validation)
    folder = backend.train(
        [training_file],
        CARD,
        tmp_path / "model",
        preset="tiny",
        validation=[validation],
        epochs=3,
        resume=True,
        device="cuda",
        config_overrides={"match_delta_r": 0.05},
    )
    info = yaml.safe_load((folder / "model.yaml").read_text())
    assert info["config"]["match_delta_r"] == 0.05
    charged = info["validation"]["gen_classes"]["charged hadron"]["matched_fraction"]
    assert charged["expected"] == pytest.approx(charged["observed"], abs=0.03)

    model = backend.load(folder, CARD, device="cuda")
    gen = CARD.preprocess(read_events(validation))[0]
    output = tmp_path / "reco.parquet"
    events, _ = model.sample(ev.make_events(gen.gen, None, gen.event_number), seed=1)
    write_events(events, output)
    reread = read_events(output, require_pfc=True)
    assert len(reread) == 400
    assert ak.all(reread.pfc.pt > 1.0)


def test_train_rejects_unknown_setting(training_file, tmp_path):
    with pytest.raises(InvalidInputError, match="no setting 'learning_rate'"):
        SmearingBackend.train([training_file], CARD, tmp_path / "m", config_overrides={"learning_rate": 1e-3})


def test_train_rejects_bad_setting_value(training_file, tmp_path):
    with pytest.raises(InvalidInputError, match="match_delta_r"):
        SmearingBackend.train([training_file], CARD, tmp_path / "m", config_overrides={"match_delta_r": -1})


def test_train_rejects_missing_file(tmp_path):
    with pytest.raises(InvalidInputError, match="not found"):
        SmearingBackend.train([tmp_path / "absent.parquet"], CARD, tmp_path / "m")


def test_train_rejects_gen_only_file(tmp_path):
    path = tmp_path / "gen_only.parquet"
    events = synthetic_events(20, seed=6)
    write_events(ev.make_events(events.gen, None, events.event_number), path)
    with pytest.raises(ParnassusError):
        SmearingBackend.train([path], CARD, tmp_path / "m", preset="tiny")
    assert not (tmp_path / "m" / "model.yaml").exists()


def test_cli_train_and_run(training_file, tmp_path):
    from parnassus.cli import main
    from parnassus.core.io import read_events

    model_dir = tmp_path / "cli-model"
    code = main(
        ["train", "--detector", "cms2011", "--backend", "smearing", "--data", str(training_file),
         "--preset", "tiny", "--set", "min_entries_resolution=30", "-o", str(model_dir)]
    )
    assert code == 0
    info = yaml.safe_load((model_dir / "model.yaml").read_text())
    assert info["config"]["min_entries_resolution"] == 30

    output = tmp_path / "reco.root"
    code = main(
        ["run", "--detector", "cms2011", "--backend", "smearing", "--weights", str(model_dir),
         "-i", str(training_file), "--events", "300", "-o", str(output), "--seed", "4"]
    )
    assert code == 0
    reco = read_events(output, require_pfc=True)
    assert len(reco) == 300
    assert ak.all(reco.pfc.pt > 1.0)
