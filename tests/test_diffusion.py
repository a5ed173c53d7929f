"""Tests of the diffusion backend (TensorFlow/Keras): train tiny -> save -> load -> sample.

One tiny model is trained once per module on 16 synthetic events (GEN smeared into
PFC, with dropped and added particles). It is trained for one epoch, then resumed,
and every sampling test uses it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import awkward as ak
import numpy as np
import pytest
import yaml

from parnassus.core import events as ev
from parnassus.core.detector import DetectorCard
from parnassus.core.io import write_events
from parnassus.exceptions import CheckpointError, MissingDependencyError

tf = pytest.importorskip("tensorflow")

from parnassus.backends.diffusion import DiffusionBackend  # noqa: E402

pytestmark = [
    pytest.mark.tensorflow,
    # Keras 3.15 converts tensors with np.array(x, copy=False) internally, which numpy 2 flags.
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"),
]

EPOCHS_FIRST = 1
EPOCHS_TOTAL = 40
COPIES = 8
BATCH_SIZE = 16
# Loss levels the tiny model must reach on its own 16 training events (EMA weights,
# fixed times and noise). Measured after 40 epochs (320 Lion steps): 0.40 (event)
# and 0.55 (particle), from 0.92 and 0.84 after the first epoch.
OVERFIT_EVENT_LOSS = 0.55
OVERFIT_PARTICLE_LOSS = 0.68


def synthetic_events(n_events: int, seed: int, mean_gen: float = 12.0) -> ak.Array:
    """GEN events and their PFCs: GEN smeared, 10 % dropped, one to three soft PFCs added."""
    rng = np.random.default_rng(seed)
    gen_counts = rng.poisson(mean_gen, n_events) + 2
    total = int(gen_counts.sum())
    pt = 0.3 + rng.exponential(4.0, total)
    eta = rng.uniform(-2.5, 2.5, total)
    phi = rng.uniform(-np.pi, np.pi, total)
    cls = rng.choice(5, size=total, p=[0.6, 0.03, 0.03, 0.14, 0.2])
    vx = rng.normal(0.0, 0.01, total)
    vy = rng.normal(0.0, 0.01, total)
    vz = rng.normal(0.0, 3.0, total)
    gen = ev.make_particles(*(ak.unflatten(column, gen_counts) for column in (pt, eta, phi, vx, vy, vz, cls)))

    keep = rng.uniform(size=total) > 0.1
    kept = ak.to_numpy(ak.sum(ak.unflatten(keep, gen_counts), axis=1))
    extra = rng.integers(1, 4, n_events)
    n_extra = int(extra.sum())
    neutral = cls >= ev.ParticleClass.NEUTRAL_HADRON
    extra_class = rng.choice([0, 3, 4], size=n_extra)
    smeared = {
        "pt": (pt * (1 + 0.1 * rng.standard_normal(total)), 1.0 + rng.exponential(1.0, n_extra)),
        "eta": (eta + 0.01 * rng.standard_normal(total), rng.uniform(-2.5, 2.5, n_extra)),
        "phi": (ev.wrap_phi(phi + 0.01 * rng.standard_normal(total)), rng.uniform(-np.pi, np.pi, n_extra)),
        "vx": (np.where(neutral, 0.0, vx), np.zeros(n_extra)),
        "vy": (np.where(neutral, 0.0, vy), np.zeros(n_extra)),
        "vz": (np.where(neutral, 0.0, vz), np.where(extra_class == 0, rng.normal(0, 3, n_extra), 0.0)),
        "class": (cls, extra_class),
    }
    columns = [
        ak.concatenate([ak.unflatten(matched[keep], kept), ak.unflatten(added, extra)], axis=1)
        for matched, added in smeared.values()
    ]
    return ev.make_events(gen, ev.make_particles(*columns))


@pytest.fixture(scope="module")
def card():
    return DetectorCard(name="synthetic", description="synthetic test detector")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, card):
    """A tiny checkpoint: one epoch, then resumed to EPOCHS_TOTAL; returns (folder, info after epoch 1)."""
    folder = tmp_path_factory.mktemp("diffusion")
    train_file = folder / "train.parquet"
    validation_file = folder / "validation.parquet"
    events = synthetic_events(16, seed=1)
    # The same 16 events, COPIES times: an epoch of COPIES steps over the tiny set.
    write_events(ak.concatenate([events] * COPIES), train_file)
    write_events(events, validation_file)
    checkpoint = folder / "checkpoint"
    options = {"preset": "tiny", "validation": [validation_file], "seed": 3, "config_overrides": {"training.batch_size": BATCH_SIZE}}

    DiffusionBackend.train([train_file], card, checkpoint, epochs=EPOCHS_FIRST, **options)
    first = yaml.safe_load((checkpoint / "model.yaml").read_text())
    DiffusionBackend.train([train_file], card, checkpoint, epochs=EPOCHS_TOTAL, resume=True, **options)
    return checkpoint, first, train_file


@pytest.fixture(scope="module")
def model(trained, card):
    return DiffusionBackend.load(trained[0], card)


@pytest.fixture(scope="module")
def gen_events(card):
    events, _ = card.preprocess(synthetic_events(12, seed=7))
    return ev.make_events(events.gen, None, events.event_number)


def test_import_without_tensorflow_module():
    code = "import sys, parnassus.backends.diffusion; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


def test_missing_tensorflow_names_extra(tmp_path, card):
    code = (
        "import sys; sys.modules['tensorflow'] = None\n"
        "from parnassus.backends.diffusion import DiffusionBackend\n"
        "from parnassus.core.detector import DetectorCard\n"
        "from parnassus.exceptions import MissingDependencyError\n"
        "try:\n"
        f"    DiffusionBackend.load({str(tmp_path)!r}, DetectorCard(name='x', description='x'))\n"
        "except MissingDependencyError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 'pip install "parnassus[tensorflow]"' in result.stdout
    assert issubclass(MissingDependencyError, ImportError)


def test_tiny_model_overfits(trained):
    history = yaml.safe_load((trained[0] / "model.yaml").read_text())["history"]
    first, last = history[0], history[-1]
    assert last["validation_event_loss"] < OVERFIT_EVENT_LOSS
    assert last["validation_particle_loss"] < OVERFIT_PARTICLE_LOSS
    assert last["validation_event_loss"] < first["validation_event_loss"]
    assert last["validation_particle_loss"] < first["validation_particle_loss"]


def test_resume_continues_history(trained):
    checkpoint, first, _ = trained
    info = yaml.safe_load((checkpoint / "model.yaml").read_text())
    assert first["epochs_completed"] == EPOCHS_FIRST
    assert info["epochs_completed"] == EPOCHS_TOTAL
    assert [record["epoch"] for record in info["history"]] == list(range(1, EPOCHS_TOTAL + 1))
    assert info["history"][0] == first["history"][0]

    import h5py

    # Lion's step counter continues across the resume.
    with h5py.File(checkpoint / "event_optimizer.weights.h5") as stream:
        counters = [stream[name][()] for name in stream if stream[name].attrs["name"].endswith("iteration")]
    assert counters == [COPIES * 16 // BATCH_SIZE * EPOCHS_TOTAL]


def test_existing_checkpoint_needs_resume(trained, card):
    checkpoint, _, train_file = trained
    with pytest.raises(CheckpointError, match="--resume"):
        DiffusionBackend.train([train_file], card, checkpoint, preset="tiny", epochs=1)


def test_checkpoint_records_model(trained, card):
    info = yaml.safe_load((trained[0] / "model.yaml").read_text())
    assert info["backend"] == "diffusion"
    assert info["detector"] == card.name
    assert info["preset"] == "tiny"
    assert info["training_data"]["events"] == 16 * COPIES
    assert set(info["normalisation"]) >= {"ptrel", "eta", "ht", "log_ptrel", "n_class0"}
    for name in ("event", "particle", "event_ema", "particle_ema"):
        assert (trained[0] / f"{name}.weights.h5").is_file()


def test_sample_multiplicities_match_draw(model, gen_events, card):
    out, report = model.sample(gen_events, seed=11)
    drawn = report.details["n_per_class"]
    assert len(out) == len(gen_events)
    np.testing.assert_array_equal(ev.multiplicity_per_class(out.pfc), drawn)

    n = drawn.sum(axis=1)
    assert n.min() >= 1
    assert n.max() <= card.max_particles
    pt = ak.to_numpy(ak.flatten(out.pfc.pt))
    phi = ak.to_numpy(ak.flatten(out.pfc.phi))
    assert np.all(pt > 0)
    assert np.all((phi > -np.pi) & (phi <= np.pi))
    assert ak.flatten(out.pfc["class"]).type.content.primitive == "int8"
    neutral = out.pfc[out.pfc["class"] >= int(ev.ParticleClass.NEUTRAL_HADRON)]
    assert ak.all(neutral.vz == 0)
    np.testing.assert_array_equal(out.event_number, gen_events.event_number)


def test_sample_pt_sums_to_drawn_ht(model, gen_events):
    out, report = model.sample(gen_events, seed=2)
    assert report.events == len(gen_events)
    assert np.all(report.details["ht"] > 0)
    np.testing.assert_allclose(ev.ht(out.pfc), report.details["ht"], rtol=1e-4)


def test_same_seed_same_output(model, gen_events):
    first, _ = model.sample(gen_events, seed=5)
    second, _ = model.sample(gen_events, seed=5)
    other, _ = model.sample(gen_events, seed=6)
    assert ak.to_list(first.pfc) == ak.to_list(second.pfc)
    assert ak.to_list(first.pfc) != ak.to_list(other.pfc)


def test_output_independent_of_padding(model, gen_events):
    alone, _ = model.sample(gen_events, seed=4, batch_size=1)
    together, _ = model.sample(gen_events, seed=4, batch_size=len(gen_events))
    np.testing.assert_array_equal(ev.multiplicity_per_class(alone.pfc), ev.multiplicity_per_class(together.pfc))
    for field in ("pt", "eta", "phi", "vz"):
        np.testing.assert_allclose(
            ak.to_numpy(ak.flatten(alone.pfc[field])), ak.to_numpy(ak.flatten(together.pfc[field])), rtol=1e-3, atol=1e-4
        )


@pytest.mark.parametrize("attention", ["cross", "union"])
def test_particle_net_ignores_padding(attention):
    from parnassus.backends.diffusion.particle_model import ParticleNet

    rng = np.random.default_rng(0)
    net = ParticleNet(hidden=16, heads=2, blocks=2, attention=attention)
    inputs = {
        "x": rng.standard_normal((2, 5, 7)),
        "pfc_class": np.eye(5)[rng.integers(0, 5, (2, 5))],
        "pfc_mask": np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]),
        "t": np.array([0.3, 0.8]),
        "gen": rng.standard_normal((2, 4, 12)),
        "gen_mask": np.array([[1, 1, 0, 0], [1, 1, 1, 1]]),
        "particle_globals": rng.standard_normal((2, 17)),
    }
    inputs = {key: tf.constant(value, tf.float32) for key, value in inputs.items()}
    net(inputs)
    # adaLN-zero starts with zero modulation and output; random weights make the check meaningful.
    for weight in net.weights:
        weight.assign(tf.random.stateless_normal(weight.shape, seed=[1, len(weight.path)]) * 0.3)

    padded = dict(inputs)
    for key, extra in (("x", 3), ("pfc_class", 3), ("pfc_mask", 3), ("gen", 6), ("gen_mask", 6)):
        value = inputs[key]
        pad = [[0, 0], [0, extra]] + [[0, 0]] * (len(value.shape) - 2)
        padded[key] = tf.pad(value, pad)
    plain = net(inputs).numpy()
    wide = net(padded).numpy()
    np.testing.assert_allclose(wide[:, :5], plain, rtol=1e-4, atol=1e-5)
    assert np.all(wide[:, 5:] == 0)
    assert np.all(plain[0, 3:] == 0)
    assert np.abs(plain[1]).sum() > 0


def test_velocity_is_scaled_v_prediction():
    from parnassus.core.paths import CosinePath

    path = CosinePath()
    rng = np.random.default_rng(1)
    x_data, noise = rng.standard_normal((2, 10))
    for t in (0.1, 0.5, 0.9):
        x_t = path.interpolate(x_data, noise, t)
        v = path.alpha(t) * noise - path.sigma(t) * x_data
        np.testing.assert_allclose(path.velocity_from_v_prediction(v), path.velocity_target(x_data, noise, t), atol=1e-12)
        np.testing.assert_allclose(path.data_prediction(x_t, np.pi / 2 * v, t), x_data, atol=1e-12)


def test_every_solver_runs(model, gen_events, card):
    from parnassus.core.plugins import available, load_solver

    names = list(available("solver"))
    assert "dpm-solver-2" in names
    subset = gen_events[:3]
    for name in names:
        steps = max(load_solver(name).min_steps, 4 if name == "pndm" else 2)
        out, report = model.sample(subset, solver=name, steps=steps, seed=1)
        np.testing.assert_array_equal(ev.multiplicity_per_class(out.pfc), report.details["n_per_class"])
        pt = ak.to_numpy(ak.flatten(out.pfc.pt))
        assert np.all(np.isfinite(pt)), name
        assert np.all(pt > 0), name


def test_rejects_other_detector(trained):
    with pytest.raises(CheckpointError, match="detector"):
        DiffusionBackend.load(trained[0], DetectorCard(name="elsewhere", description="x"))


def test_rejects_other_backend(trained, card, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(trained[0], copy)
    info = yaml.safe_load((copy / "model.yaml").read_text())
    info["backend"] = "flow-matching"
    (copy / "model.yaml").write_text(yaml.safe_dump(info))
    with pytest.raises(CheckpointError, match="flow-matching"):
        DiffusionBackend.load(copy, card)


def test_rejects_corrupted_weights(trained, card, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(trained[0], copy)
    data = (copy / "particle_ema.weights.h5").read_bytes()
    (copy / "particle_ema.weights.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="particle_ema.weights.h5"):
        DiffusionBackend.load(copy, card)


def test_rejects_foreign_weights(trained, card, tmp_path):
    from parnassus.backends.diffusion.event_model import EventNet, dummy_inputs

    copy = tmp_path / "copy"
    shutil.copytree(trained[0], copy)
    other = EventNet(hidden=8, blocks=3)
    other(dummy_inputs())
    (copy / "event_ema.weights.h5").unlink()
    other.save_weights(str(copy / "event_ema.weights.h5"))
    with pytest.raises(CheckpointError, match="event_ema.weights.h5"):
        DiffusionBackend.load(copy, card)


def test_rejects_missing_weights(trained, card, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(trained[0], copy)
    (copy / "event_ema.weights.h5").unlink()
    with pytest.raises(CheckpointError, match="event_ema.weights.h5 not found"):
        DiffusionBackend.load(copy, card)


def test_event_without_gen_particles(model, gen_events):
    empty = gen_events.gen[:1][:, :0]
    events = ev.make_events(ak.concatenate([empty, gen_events.gen[:2]]), None, [0, 1, 2])
    out, report = model.sample(events, seed=3)
    counts = ev.multiplicity(out.pfc)
    assert counts[0] >= 1
    np.testing.assert_array_equal(counts, report.details["n_per_class"].sum(axis=1))
    assert np.all(ak.to_numpy(ak.flatten(out.pfc.pt)) > 0)


@pytest.mark.slow
def test_resume_matches_uninterrupted_run(tmp_path, card, monkeypatch):
    import h5py

    from parnassus.backends.diffusion import training

    train_file = tmp_path / "train.parquet"
    write_events(synthetic_events(32, seed=9), train_file)
    options = {"preset": "tiny", "epochs": 2, "seed": 4}
    DiffusionBackend.train([train_file], card, tmp_path / "whole", **options)

    # Stop the second run right after the checkpoint of epoch 1, as a killed job would.
    write_model_yaml = training.write_model_yaml

    class Stopped(Exception):
        pass

    def write_then_stop(*args, **kwargs):
        write_model_yaml(*args, **kwargs)
        raise Stopped

    monkeypatch.setattr(training, "write_model_yaml", write_then_stop)
    with pytest.raises(Stopped):
        DiffusionBackend.train([train_file], card, tmp_path / "resumed", **options)
    monkeypatch.setattr(training, "write_model_yaml", write_model_yaml)
    DiffusionBackend.train([train_file], card, tmp_path / "resumed", resume=True, **options)

    for name in ("event.weights.h5", "particle.weights.h5", "event_ema.weights.h5", "particle_ema.weights.h5"):
        with h5py.File(tmp_path / "whole" / name) as whole, h5py.File(tmp_path / "resumed" / name) as resumed:
            datasets = []
            whole.visititems(lambda key, item: datasets.append(key) if isinstance(item, h5py.Dataset) else None)
            assert datasets, name
            for key in datasets:
                np.testing.assert_array_equal(whole[key][()], resumed[key][()], err_msg=f"{name}:{key}")


def test_event_stream_max_events(tmp_path):
    """max_events keeps the first N events in file order, also when the file order is shuffled."""
    from conftest import random_particles

    from parnassus.backends.diffusion.data import EventStream
    from parnassus.core import events as ev
    from parnassus.core.io import write_events
    from parnassus.core.plugins import load_detector

    rng = np.random.default_rng(3)
    paths = []
    for index in range(3):
        gen = random_particles(rng, rng.integers(5, 20, 40))
        pfc = random_particles(rng, rng.integers(5, 20, 40), pt_min=1.5)
        path = tmp_path / f"part{index}.parquet"
        write_events(ev.make_events(gen, pfc, np.arange(40) + 100 * index), path)
        paths.append(path)

    stream = EventStream(paths, load_detector("cmslike"), chunk_size=16, max_events=55)
    assert stream.count() == 55
    numbers = np.concatenate([chunk.event_number.to_numpy() for chunk in stream.chunks(np.random.default_rng(0))])
    assert sorted(numbers.tolist()) == list(range(40)) + list(range(100, 115))
    assert EventStream(paths, load_detector("cmslike")).count() == 120
