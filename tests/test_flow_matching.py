"""Tests of the flow-matching backend (PyTorch) with the tiny preset on synthetic events.

The synthetic PFCs are the GEN particles smeared (pT by 10 %, eta and phi by
0.02), with 10 % of them lost and up to two soft photons added per event, the
way a detector loses and fakes particles.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import yaml

from parnassus.core import events as ev
from parnassus.core import plugins
from parnassus.core.detector import DetectorCard
from parnassus.exceptions import CheckpointError, InvalidInputError, MissingDependencyError

torch = pytest.importorskip("torch")

from parnassus.backends.flow_matching import FlowMatchingBackend  # noqa: E402
from parnassus.backends.flow_matching import features as ft  # noqa: E402
from parnassus.backends.flow_matching.lion import Lion  # noqa: E402
from parnassus.backends.flow_matching.particle_model import (  # noqa: E402
    DISPLACEMENT_CLIP,
    DirectionLocality,
    ParticleNet,
    key_mask_for,
    nearest_gen_features,
)
from parnassus.backends.flow_matching.presets import make_config  # noqa: E402
from parnassus.backends.flow_matching.runtime import build_networks  # noqa: E402
from parnassus.backends.flow_matching.sampling import sampling_order  # noqa: E402

pytestmark = pytest.mark.torch

CARD = DetectorCard(name="testdet", description="synthetic detector for tests")


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    # Test machines run parallel jobs, and OpenMP threads that spin while
    # waiting for a core slow tiny networks down many times.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def synthetic_events(n_events: int, seed: int) -> ak.Array:
    """GEN events with 3-29 particles and PFCs made from them by smearing, losses and fakes."""
    rng = np.random.default_rng(seed)
    n_gen = rng.integers(3, 30, n_events)
    total = int(n_gen.sum())

    pt = 0.3 + rng.exponential(5.0, total)
    eta = rng.uniform(-2.6, 2.6, total)
    phi = rng.uniform(-np.pi, np.pi, total)
    cls = rng.choice(5, total, p=[0.55, 0.05, 0.05, 0.1, 0.25])
    vx = rng.normal(0.2, 0.05, total)
    vy = rng.normal(0.3, 0.05, total)
    vz = rng.normal(0.0, 5.0, total)
    gen = ev.make_particles(*(ak.unflatten(v, n_gen) for v in (pt, eta, phi, vx, vy, vz, cls)))

    kept = ak.unflatten(rng.uniform(size=total) > 0.1, n_gen)
    smeared = (
        pt * (1 + 0.1 * rng.normal(size=total)),
        eta + 0.02 * rng.normal(size=total),
        ev.wrap_phi(phi + 0.02 * rng.normal(size=total)),
        vx,
        vy,
        vz,
        cls,
    )
    n_fake = rng.integers(0, 3, n_events)
    fakes = int(n_fake.sum())
    fake = (
        1 + rng.exponential(1.0, fakes),
        rng.uniform(-2.6, 2.6, fakes),
        rng.uniform(-np.pi, np.pi, fakes),
        np.zeros(fakes),
        np.zeros(fakes),
        np.zeros(fakes),
        np.full(fakes, int(ev.ParticleClass.PHOTON)),
    )
    columns = [
        ak.concatenate([ak.unflatten(real, n_gen)[kept], ak.unflatten(extra, n_fake)], axis=1)
        for real, extra in zip(smeared, fake)
    ]
    return ev.make_events(gen, ev.make_particles(*columns))


def as_training_source(events: ak.Array, tmp_path: Path, name: str):
    """Write events to a Parquet file when parnassus.core.io can, else return them in memory."""
    try:
        from parnassus.core.io import write_events
    except ImportError:
        return events
    path = tmp_path / f"{name}.parquet"
    write_events(events, path)
    return [path]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained for 2 epochs on 120 events, with validation data."""
    import os

    os.environ["OMP_NUM_THREADS"] = "1"
    folder = tmp_path_factory.mktemp("fm")
    source = as_training_source(synthetic_events(120, 1), folder, "train")
    validation = as_training_source(synthetic_events(40, 2), folder, "valid")
    out = folder / "model"
    FlowMatchingBackend.train(source, CARD, out, preset="tiny", epochs=2, validation=validation, seed=3)
    return out


@pytest.fixture(scope="module")
def model(trained):
    return FlowMatchingBackend.load(trained, CARD, device="cpu")


@pytest.fixture(scope="module")
def gen_events():
    events, _ = CARD.preprocess(synthetic_events(24, 7))
    return ev.make_events(events.gen, None, events.event_number)


def read_info(folder: Path) -> dict:
    with open(folder / "model.yaml") as stream:
        return yaml.safe_load(stream)


# --- plugin surface ------------------------------------------------------------------


def test_import_does_not_import_torch():
    code = "import sys, parnassus.backends.flow_matching as m; m.FlowMatchingBackend; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_missing_torch_raises_install_hint(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "parnassus\[torch\]"'):
        FlowMatchingBackend.load(tmp_path, CARD)


def test_backend_registered():
    backend = plugins.load_backend("flow-matching")
    assert backend is FlowMatchingBackend
    assert backend.extra == "torch"


# --- training ------------------------------------------------------------------------


def test_checkpoint_contents(trained):
    info = read_info(trained)
    assert info["backend"] == "flow-matching"
    assert info["detector"] == "testdet"
    assert info["preset"] == "tiny"
    assert info["epochs_completed"] == 2
    assert len(info["history"]) == 2
    assert "val_particle_loss" in info["history"][-1]
    assert set(info["normalisation"]) >= {"ptrel", "ht", "n", "met_x"}
    for name in ("event", "particle", "event_ema", "particle_ema", "optimizer"):
        assert (trained / f"{name}.safetensors").is_file()


def test_tiny_model_learns_50_events(tmp_path):
    # The same 50 events four times per epoch. Measured on this setup (seed 0):
    # event loss 1.9 -> 0.60 and particle loss 1.9 -> 1.30 after 30 epochs. The
    # thresholds leave a margin for other machines and library versions.
    events = synthetic_events(50, 5)
    out = tmp_path / "overfit"
    overrides = {"lr_max": 3e-3, "warmup_fraction": 0.02, "batch_size": 10, "particle_hidden": 32, "event_hidden": 32}
    FlowMatchingBackend.train(ak.concatenate([events] * 4), CARD, out, preset="tiny", epochs=30, config_overrides=overrides)
    history = read_info(out)["history"]
    assert history[0]["event_loss"] > 1.5
    assert history[-1]["event_loss"] < 1.0
    assert history[-1]["particle_loss"] < 1.5
    assert history[-1]["particle_loss"] < 0.8 * history[0]["particle_loss"]

    # Physics check of the event stage on the training events. Measured (seed 0):
    # mean N 12.5 against 12.6, correlation of sampled and true N 0.93, mean HT
    # 69.0 GeV against 69.3 GeV, correlation of HT 0.91.
    preprocessed, _ = CARD.preprocess(events)
    model = FlowMatchingBackend.load(out, CARD, device="cpu")
    result, _ = model.sample(ev.make_events(preprocessed.gen), seed=0, steps=10)
    n_true, n_sampled = ev.multiplicity(preprocessed.pfc), ev.multiplicity(result.pfc)
    ht_true, ht_sampled = ev.ht(preprocessed.pfc), ev.ht(result.pfc)
    assert abs(n_sampled.mean() / n_true.mean() - 1) < 0.15
    assert np.corrcoef(n_true, n_sampled)[0, 1] > 0.8
    assert abs(ht_sampled.mean() / ht_true.mean() - 1) < 0.2
    assert np.corrcoef(ht_true, ht_sampled)[0, 1] > 0.7


def test_resume_matches_uninterrupted(tmp_path, monkeypatch):
    from parnassus.backends.flow_matching.training import Trainer

    events = synthetic_events(40, 11)
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    FlowMatchingBackend.train(events, CARD, straight, preset="tiny", epochs=3, seed=5)

    original_save = Trainer.save

    def save_then_stop(self, summary):
        original_save(self, summary)
        if self.epochs_completed == 2:
            raise KeyboardInterrupt("simulated interruption after epoch 2")

    monkeypatch.setattr(Trainer, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        FlowMatchingBackend.train(events, CARD, resumed, preset="tiny", epochs=3, seed=5)
    monkeypatch.setattr(Trainer, "save", original_save)
    assert read_info(resumed)["epochs_completed"] == 2

    FlowMatchingBackend.train(events, CARD, resumed, preset="tiny", seed=5, resume=True)
    info = read_info(resumed)
    assert info["epochs_completed"] == 3
    assert [r["epoch"] for r in info["history"]] == [1, 2, 3]

    from safetensors.torch import load_file

    for name in ("particle.safetensors", "event_ema.safetensors"):
        a, b = load_file(straight / name), load_file(resumed / name)
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def test_existing_checkpoint_needs_resume(trained, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    with pytest.raises(InvalidInputError, match="--resume"):
        FlowMatchingBackend.train(synthetic_events(10, 0), CARD, copy, preset="tiny")


def test_unknown_override_rejected(tmp_path):
    with pytest.raises(InvalidInputError, match="hidden_size"):
        FlowMatchingBackend.train(synthetic_events(10, 0), CARD, tmp_path / "x", preset="tiny", config_overrides={"hidden_size": 8})


def test_lion_step_formula():
    param = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    optimizer = Lion([param], lr=0.1, betas=(0.9, 0.99), weight_decay=0.5)
    param.grad = torch.tensor([0.3, -0.1, 0.0])
    optimizer.step()
    # p (1 - lr wd) - lr sign(0.9 * 0 + 0.1 g)
    expected = torch.tensor([1.0, -2.0, 0.5]) * 0.95 - 0.1 * torch.tensor([1.0, -1.0, 0.0])
    torch.testing.assert_close(param.detach(), expected)
    torch.testing.assert_close(optimizer.state[param]["exp_avg"], 0.01 * torch.tensor([0.3, -0.1, 0.0]))


def test_learning_rate_warmup_then_cosine():
    from parnassus.backends.flow_matching.training import learning_rate

    config = {"lr_max": 1e-3, "lr_min": 1e-5, "warmup_fraction": 0.1}
    assert learning_rate(0, 100, config) == pytest.approx(1e-5)
    assert learning_rate(5, 100, config) == pytest.approx(0.5 * (1e-5 + 1e-3))
    assert learning_rate(10, 100, config) == pytest.approx(1e-3)
    assert learning_rate(55, 100, config) == pytest.approx(0.5 * (1e-5 + 1e-3))
    assert learning_rate(100, 100, config) == pytest.approx(1e-5)


def test_batches_padded_to_own_multiplicity():
    from parnassus.backends.flow_matching import data as fm_data

    events, _ = CARD.preprocess(synthetic_events(60, 3))
    features = ft.chunk_features(events, ft.resolve_normalisation(CARD, "fit", events))
    batches = fm_data.batches_by_multiplicity(features.pfc_counts, 16, np.random.default_rng(0))
    assert sorted(np.concatenate(batches).tolist()) == list(range(60))
    lengths = []
    for index in batches:
        batch = fm_data.make_batch(features, index)
        assert batch.pfc.shape[1] == features.pfc_counts[index].max()
        assert batch.gen.shape[1] == max(features.gen_counts[index].max(), 1)
        np.testing.assert_array_equal(batch.pfc_mask.sum(axis=1), features.pfc_counts[index])
        assert np.all(batch.pfc[~batch.pfc_mask] == 0)
        lengths.append(batch.pfc.shape[1])
    # Grouping by multiplicity: the batches together pad far less than padding all to the maximum.
    assert sum(lengths) < len(batches) * features.pfc_counts.max()


# --- sampling ------------------------------------------------------------------------


def test_sample_outputs_physical_pfcs(model, gen_events):
    result, report = model.sample(gen_events, seed=1, steps=6, event_steps=6)
    assert len(result) == len(gen_events)
    assert report.events == len(gen_events)
    pfc = result.pfc
    counts = ak.to_numpy(ak.num(pfc))
    assert counts.min() >= 1
    assert counts.max() <= CARD.max_particles
    pt = ak.to_numpy(ak.flatten(pfc.pt))
    assert np.all(pt >= CARD.pfc_selection.pt_min)
    phi = ak.to_numpy(ak.flatten(pfc.phi))
    assert np.all((phi > -np.pi) & (phi <= np.pi))
    cls = ak.to_numpy(ak.flatten(pfc["class"]))
    assert cls.dtype == np.int8
    assert set(np.unique(cls)) <= set(range(5))
    neutral = cls >= ev.ParticleClass.NEUTRAL_HADRON
    assert np.all(ak.to_numpy(ak.flatten(pfc.vz))[neutral] == 0)
    np.testing.assert_array_equal(ak.to_numpy(result.event_number), ak.to_numpy(gen_events.event_number))
    assert ak.all(ak.num(result.gen) == ak.num(gen_events.gen))


def test_multiplicity_equals_event_stage_draw(model, gen_events, monkeypatch):
    drawn = []
    original = model.sample_event_stage

    def recording(*args, **kwargs):
        x, redraws, fallbacks = original(*args, **kwargs)
        drawn.append(ft.decode_event(x, model.norm)["n"])
        return x, redraws, fallbacks

    monkeypatch.setattr(model, "sample_event_stage", recording)
    result, _ = model.sample(gen_events, seed=2, steps=4, event_steps=6, batch_size=10)
    order = sampling_order(gen_events)
    np.testing.assert_array_equal(ak.to_numpy(ak.num(result.pfc))[order], np.concatenate(drawn))


def test_output_in_input_order(model, gen_events):
    order = sampling_order(gen_events)
    assert not np.array_equal(order, np.arange(len(gen_events)))
    # Pre-sorted input is sampled in the same batches with the same noise, so
    # the two outputs differ only by the permutation.
    unsorted, _ = model.sample(gen_events, seed=6, steps=4, event_steps=4, batch_size=8)
    presorted, _ = model.sample(gen_events[order], seed=6, steps=4, event_steps=4, batch_size=8)
    assert ak.to_list(unsorted.pfc[order]) == ak.to_list(presorted.pfc)
    np.testing.assert_array_equal(ak.to_numpy(unsorted.event_number), ak.to_numpy(gen_events.event_number))


def test_same_seed_same_output(model, gen_events):
    first, _ = model.sample(gen_events, seed=4, steps=5, event_steps=5)
    second, _ = model.sample(gen_events, seed=4, steps=5, event_steps=5)
    other, _ = model.sample(gen_events, seed=5, steps=5, event_steps=5)
    assert ak.to_list(first.pfc) == ak.to_list(second.pfc)
    assert ak.to_list(first.pfc) != ak.to_list(other.pfc)


def test_invalid_draws_redrawn_not_dropped(trained, gen_events):
    # With at most 3 PFCs allowed, most event-stage draws (N around 15) are invalid.
    narrow = DetectorCard(name="testdet", description="narrow", max_particles=3)
    narrow_model = FlowMatchingBackend.load(trained, narrow, device="cpu")
    result, report = narrow_model.sample(gen_events, seed=0, steps=4, event_steps=4)
    counts = ak.to_numpy(ak.num(result.pfc))
    assert len(result) == len(gen_events)
    assert counts.min() >= 1
    assert counts.max() <= 3
    assert report.redraws > 0


@pytest.mark.parametrize("solver", sorted(plugins.available("solver")))
def test_every_solver_runs_model(model, gen_events, solver):
    steps = 4  # pndm needs at least 4 steps (3 Runge-Kutta warm-up steps)
    result, report = model.sample(gen_events[:6], seed=0, solver=solver, steps=steps, event_solver=solver, event_steps=steps)
    pt = ak.to_numpy(ak.flatten(result.pfc.pt))
    assert len(result) == 6
    assert np.all(np.isfinite(pt))
    assert np.all(ak.to_numpy(ak.num(result.pfc)) >= 1)


# --- padding -------------------------------------------------------------------------


@pytest.mark.parametrize("locality_heads, nearest_features", [(0, False), (1, False), (1, True)])
def test_velocity_independent_of_padding(locality_heads, nearest_features):
    torch.manual_seed(0)
    net = ParticleNet(
        hidden=16, heads=2, layers=2, mlp_ratio=2, locality_heads=locality_heads, nearest_features=nearest_features
    ).eval()
    # adaLN-zero starts every layer as the identity; give it weights so attention matters.
    with torch.no_grad():
        for param in net.parameters():
            param.add_(0.1 * torch.randn_like(param))

    gen_counts, pfc_counts = torch.tensor([5, 2, 0]), torch.tensor([3, 6, 1])
    gen = torch.randn(3, 5, 12)
    pfc = torch.randn(3, 6, 12)
    t = torch.tensor([0.3, 0.7, 0.9])
    globals_ = torch.randn(3, 20)

    def run(gen_length, pfc_length):
        gen_padded = torch.cat([gen, 100 * torch.randn(3, gen_length - 5, 12)], dim=1)
        pfc_padded = torch.cat([pfc, 100 * torch.randn(3, pfc_length - 6, 12)], dim=1)
        gen_mask = torch.arange(gen_length)[None] < gen_counts[:, None]
        pfc_mask = torch.arange(pfc_length)[None] < pfc_counts[:, None]
        with torch.no_grad():
            v = net(pfc_padded, t, pfc_mask, gen_padded, gen_mask, globals_)
        assert torch.all(v[~pfc_mask] == 0)
        assert torch.all(torch.isfinite(v))
        return v[:, :6], pfc_mask[:, :6]

    short, mask = run(5, 6)
    long, _ = run(17, 23)
    torch.testing.assert_close(short[mask], long[mask], rtol=1e-5, atol=1e-5)


def _direction(eta, phi):
    """Return features with only the direction columns set: T(eta) = eta, sin phi, cos phi."""
    x = torch.zeros(len(eta), 12)
    x[:, ft.ETA] = torch.tensor(eta)
    x[:, ft.SIN_PHI] = torch.sin(torch.tensor(phi))
    x[:, ft.COS_PHI] = torch.cos(torch.tensor(phi))
    return x


def test_locality_bias_value():
    locality = DirectionLocality(heads=3, biased_heads=2, min_width=0.01, max_width=0.3)
    gen = _direction([0.0, 1.0, -1.5, 0.5], [0.0, 2.0, -2.5, 3.1])[None]
    t = torch.tensor([0.05])
    # Each PFC sits on the noiseless path point (1 - t) g of GEN particle k = 2, 0, 3.
    pfc = (1 - t) * gen[:, [2, 0, 3]] + 0.001
    bias = locality(pfc, t, gen)
    assert bias.shape == (1, 3, 3, 4)
    # The biased heads favour the GEN particle each PFC came from; the last head is free.
    assert bias[0, :2].argmax(dim=-1).tolist() == [[2, 0, 3], [2, 0, 3]]
    assert torch.all(bias[0, 2] == 0)
    # Hand computation for PFC 0, GEN 1, head 1 (width 0.3): -|x - (1 - t) g|^2 / (2 (w^2 + t^2)).
    d2 = ((pfc[0, 0, [ft.ETA, ft.SIN_PHI, ft.COS_PHI]] - (1 - t) * gen[0, 1, [ft.ETA, ft.SIN_PHI, ft.COS_PHI]]) ** 2).sum()
    expected = -d2 / (2 * (0.3**2 + 0.05**2))
    torch.testing.assert_close(bias[0, 1, 0, 1], expected, rtol=1e-4, atol=1e-5)
    # The widths run geometrically from the narrowest to the widest head.
    torch.testing.assert_close(locality.widths, torch.tensor([0.01, 0.3]))


def test_locality_bias_off():
    assert DirectionLocality(heads=2, biased_heads=0)(torch.zeros(1, 2, 12), torch.tensor([0.5]), torch.zeros(1, 3, 12)) is None
    with pytest.raises(ValueError, match="biased_heads"):
        DirectionLocality(heads=2, biased_heads=3)


def test_locality_bias_source_particle():
    """Whatever the projections, a narrow biased head attends almost only to the GEN particle under the PFC."""
    torch.manual_seed(1)
    net = ParticleNet(hidden=16, heads=2, layers=1, mlp_ratio=2, locality_heads=1).eval()
    gen = _direction([0.0, 0.8, -1.2, 1.9, -0.4], [0.1, -2.0, 2.5, 0.9, -1.1])[None]
    t = torch.tensor([0.02])
    pfc = (1 - t) * gen[:, [3]]
    layer = net.pfc_layers[0].attention
    captured = {}

    def keep(module, args, output):
        captured["bias"] = args[2].attn_mask

    layer.register_forward_hook(keep)
    with torch.no_grad():
        net(pfc, t, torch.ones(1, 1, dtype=torch.bool), gen, torch.ones(1, 5, dtype=torch.bool), torch.zeros(1, 20))
    bias = captured["bias"][0, 0, 0]
    # With qk-norm (unit gains at initialisation) every query-key logit lies in
    # [-sqrt(d), sqrt(d)] for head size d. A bias gap above 2 sqrt(d) + log(1000 * keys)
    # then leaves more than 99.9 % of the weight on GEN particle 3.
    head_size = 16 // 2
    others = torch.cat([bias[:3], bias[4:]])
    assert bias[3] - others.max() > 2 * head_size**0.5 + math.log(1000 * 5)


def test_nearest_gen_features_value():
    """A PFC on the path point of a GEN particle gets that particle's features and the noise as displacement."""
    gen = _direction([0.0, 1.0, -1.5], [0.0, 2.0, -2.5])
    gen[:, ft.PTREL] = torch.tensor([0.3, -0.2, 1.1])
    gen[torch.arange(3), ft.N_KINEMATIC + torch.tensor([0, 3, 4])] = 1.0
    gen = gen[None]
    t = torch.tensor([0.03])
    noise = torch.tensor([[0.4, -1.2, 0.7], [2.0, 0.1, -0.3]])
    columns = [ft.ETA, ft.SIN_PHI, ft.COS_PHI]
    pfc = torch.zeros(1, 2, 12)
    pfc[0, :, columns] = (1 - t) * gen[0, [2, 1]][:, columns] + t * noise
    locality = DirectionLocality(heads=2, biased_heads=1)
    gen_mask = torch.ones(1, 3, dtype=torch.bool)
    nearest = nearest_gen_features(key_mask_for(gen_mask, locality(pfc, t, gen)), pfc, t, gen)
    assert nearest.shape == (1, 2, 15)
    torch.testing.assert_close(nearest[0, :, :12], gen[0, [2, 1]], atol=1e-4, rtol=0)
    torch.testing.assert_close(nearest[0, :, 12:], noise, atol=1e-2, rtol=0)

    # Far from every GEN particle the displacement is clipped.
    far = torch.full((1, 1, 12), 40.0)
    clipped = nearest_gen_features(key_mask_for(gen_mask, locality(far, t, gen)), far, t, gen)
    assert torch.all(clipped[0, 0, 12:] == DISPLACEMENT_CLIP)
    # An event without GEN gets zeros for the GEN features.
    no_gen = torch.zeros(1, 3, dtype=torch.bool)
    empty = nearest_gen_features(key_mask_for(no_gen, locality(pfc, t, gen)), pfc, t, gen)
    assert torch.all(empty[..., :12] == 0)


def test_locality_settings_checked():
    with pytest.raises(InvalidInputError, match="nearest_features"):
        make_config("small", {"locality_heads": 0})
    with pytest.raises(InvalidInputError, match="locality_heads"):
        make_config("small", {"locality_heads": 5})


def test_locality_setting_missing():
    """Weights written before the locality bias existed load as the unbiased network."""
    config = make_config("tiny")
    del config["locality_heads"], config["nearest_features"]
    _, particle_net = build_networks(config)
    assert particle_net.locality.biased_heads == 0
    assert not particle_net.nearest_features
    assert make_config("small")["locality_heads"] == 3
    assert make_config("paper")["locality_heads"] == 0


def test_decoded_pt_sum_to_sampled_ht():
    """pT/HT draws that do not sum to 1 are rescaled to the event's HT; ratios are kept, the floor holds."""
    from parnassus.core.detector import Standardisation

    card = plugins.load_detector("cmslike")
    norm = {key: Standardisation(0.0, 1.0) for key in ("ptrel", "eta", "phi", "vx", "vy", "vz", "ht", "n", "met_x", "met_y")}
    x = np.zeros((2, 3, 12), dtype=np.float32)
    x[0, :, ft.PTREL] = [0.5, 0.3, 0.4]  # sums to 1.2
    x[1, :2, ft.PTREL] = [0.2, 0.2]  # sums to 0.4; slot 2 is padding
    x[1, 2, ft.PTREL] = 99.0
    x[:, :, ft.COS_PHI] = 1.0
    x[:, :, ft.N_KINEMATIC] = 1.0
    ht = np.array([120.0, 50.0])
    particles, report = ft.decode_particles(x, np.array([3, 2]), ht, norm, card)
    np.testing.assert_allclose(ak.to_numpy(ak.sum(particles.pt, axis=1)), ht, rtol=1e-6)
    np.testing.assert_allclose(ak.to_list(particles.pt[0]), [50.0, 40.0, 30.0], rtol=1e-6)
    np.testing.assert_allclose(ak.to_list(particles.pt[1]), [25.0, 25.0], rtol=1e-6)
    assert report.pt_clamped == 0

    # A tiny share stays at the card's 1 GeV PFC threshold after the rescaling, and is counted.
    x[0, :, ft.PTREL] = [1.0, 1.0, 0.001]
    particles, report = ft.decode_particles(x, np.array([3, 2]), ht, norm, card)
    assert ak.min(particles.pt[0]) == pytest.approx(card.pfc_selection.pt_min)
    assert report.pt_clamped == 1


def test_sample_independent_of_padding(model, gen_events):
    features = ft.chunk_features(gen_events, model.norm)
    counts = np.array([3, 7, 1, 5] + [2] * (len(features) - 4))
    pfc_event = np.zeros((len(features), 4), dtype=np.float32)
    solver = plugins.load_solver("dpm-solver++2m")

    def run(pad_length):
        generator = torch.Generator().manual_seed(9)
        with torch.inference_mode():
            return model.sample_particle_stage(features, pfc_event, counts, generator, solver, 5, pad_length=pad_length)

    short, long = run(None), run(40)
    mask = np.arange(7)[None, :] < counts[:, None]
    np.testing.assert_allclose(short[mask], long[:, :7][mask], rtol=1e-4, atol=1e-5)


# --- checkpoints ---------------------------------------------------------------------


def copy_checkpoint(trained: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "ckpt"
    shutil.copytree(trained, folder)
    return folder


def edit_model_yaml(folder: Path, **changes) -> None:
    info = read_info(folder)
    info.update(changes)
    with open(folder / "model.yaml", "w") as stream:
        yaml.safe_dump(info, stream, sort_keys=False)


def test_truncated_weights_rejected(trained, tmp_path):
    folder = copy_checkpoint(trained, tmp_path)
    path = folder / "particle_ema.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="particle_ema.safetensors"):
        FlowMatchingBackend.load(folder, CARD)


def test_foreign_backend_rejected(trained, tmp_path):
    folder = copy_checkpoint(trained, tmp_path)
    edit_model_yaml(folder, backend="diffusion")
    with pytest.raises(CheckpointError, match="diffusion"):
        FlowMatchingBackend.load(folder, CARD)


def test_foreign_detector_rejected(trained, tmp_path):
    folder = copy_checkpoint(trained, tmp_path)
    edit_model_yaml(folder, detector="cms2011")
    with pytest.raises(CheckpointError, match="cms2011"):
        FlowMatchingBackend.load(folder, CARD)


def test_mismatched_weights_rejected(trained, tmp_path):
    folder = copy_checkpoint(trained, tmp_path)
    info = read_info(folder)
    edit_model_yaml(folder, config={**info["config"], "particle_hidden": 32})
    with pytest.raises(CheckpointError, match="does not match"):
        FlowMatchingBackend.load(folder, CARD)


def test_weights_of_other_epoch_rejected(trained, tmp_path):
    folder = copy_checkpoint(trained, tmp_path)
    edit_model_yaml(folder, epochs_completed=1)
    with pytest.raises(CheckpointError, match="epoch"):
        FlowMatchingBackend.load(folder, CARD)


def test_batch_stream_reads_every_file_each_epoch(tmp_path):
    """Files shorter than a chunk are separate chunks: every pass must read all of them."""
    from conftest import random_particles

    from parnassus.backends.flow_matching.data import BatchStream
    from parnassus.core.detector import fit_normalisation
    from parnassus.core.io import write_events

    rng = np.random.default_rng(8)
    paths = []
    for index in range(3):
        gen = random_particles(rng, rng.integers(5, 20, 30))
        pfc = random_particles(rng, rng.integers(3, 15, 30), pt_min=1.5)
        path = tmp_path / f"part{index}.parquet"
        write_events(ev.make_events(gen, pfc, np.arange(30) + 100 * index), path)
        paths.append(path)

    card = DetectorCard("test", "test card")
    events = ev.make_events(gen, pfc)
    stream = BatchStream(paths, card, fit_normalisation(events), batch_size=8, chunk_size=1000)
    for epoch in range(3):
        assert sum(len(batch) for batch in stream(np.random.default_rng(epoch))) == 90

    limited = BatchStream(paths, card, fit_normalisation(events), batch_size=8, chunk_size=1000, max_events=45)
    for epoch in range(2):
        assert sum(len(batch) for batch in limited(None)) == 45
