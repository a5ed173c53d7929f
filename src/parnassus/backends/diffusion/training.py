"""Training of the diffusion backend: v-prediction on the cosine path, Lion, EMA.

Both stages are trained together on the same batches, each with its own Lion
optimiser (arXiv:2302.06675) and a cosine learning-rate decay from
``learning_rate`` to ``min_learning_rate`` over all steps of the run, as in
Table III of arXiv:2503.19981 (6e-5 to 1e-7 for the ``paper`` preset).

Loss (Eq. 9 of arXiv:2503.19981, v-prediction of arXiv:2202.00512) on the path
x_t = alpha_t x + sigma_t eps with alpha_t = cos(pi t / 2), sigma_t = sin(pi t / 2),
t ~ U(0, 1) drawn per event and per stage:

    v = alpha_t eps - sigma_t x,
    L_event    = mean over (events, 8 values) of (v_theta - v)^2,
    L_particle = sum over real PFCs and 7 features of (v_theta - v)^2 / (7 * real PFCs),

so padded slots never enter the particle loss. The per-class multiplicities are
dequantised with uniform noise in [-0.5, 0.5) before normalisation, so the event
network learns a continuous density whose rounding gives the integer counts.

The exponential moving average (EMA) of each network starts as a copy of its
initial weights, with decay min(ema_decay, (1 + step) / (10 + step)) so that it
follows the weights closely in the first steps.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from parnassus.core.checkpoint import normalisation_to_dict, write_model_yaml
from parnassus.core.detector import DetectorCard, Standardisation
from parnassus.core.paths import CosinePath
from parnassus.core.progress import RateLogger, progress_bar
from parnassus.exceptions import CheckpointError, InvalidInputError
from parnassus.backends.diffusion import checkpoint as ckpt
from parnassus.backends.diffusion import data as dt
from parnassus.backends.diffusion import features as ft
from parnassus.backends.diffusion.presets import make_config
from parnassus.backends.diffusion.runtime import import_tensorflow, on_device

log = logging.getLogger(__name__)

PATH = CosinePath()


# --- inputs and targets ------------------------------------------------------------------


def diffusion_inputs(batch: dict[str, np.ndarray], table: dict[str, Standardisation], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draw times and noise for one batch and return the network inputs and v targets.

    Args:
        batch: a batch from :func:`parnassus.backends.diffusion.data.iterate_batches`.
        table: the normalisation table.
        rng: the random generator for times, noise and dequantisation.

    Returns:
        dict of float32 arrays: the conditioning inputs of the batch plus
        ``event_x`` (B, 8), ``event_t`` (B,), ``event_v`` (B, 8) and
        ``particle_x`` (B, P, 7), ``particle_t`` (B,), ``particle_v`` (B, P, 7).
    """
    size = len(batch["ht"])

    counts = batch["n_per_class"] + rng.uniform(-0.5, 0.5, size=batch["n_per_class"].shape)
    event_data = ft.pfc_event_vector(counts, batch["ht"], batch["met_x"], batch["met_y"], table)
    event_t = rng.uniform(0.0, 1.0, size=size)
    event_noise = rng.standard_normal(event_data.shape)
    alpha, sigma = PATH.alpha(event_t)[:, None], PATH.sigma(event_t)[:, None]
    event_x = alpha * event_data + sigma * event_noise
    event_v = alpha * event_noise - sigma * event_data

    mask = batch["pfc_mask"][:, :, None]
    particle_data = batch["pfc"]
    particle_t = rng.uniform(0.0, 1.0, size=size)
    particle_noise = rng.standard_normal(particle_data.shape) * mask
    alpha, sigma = PATH.alpha(particle_t)[:, None, None], PATH.sigma(particle_t)[:, None, None]
    particle_x = (alpha * particle_data + sigma * particle_noise) * mask
    particle_v = (alpha * particle_noise - sigma * particle_data) * mask

    inputs = {key: batch[key] for key in ("gen", "gen_mask", "gen_globals", "pfc_class", "pfc_mask", "particle_globals")}
    inputs.update(
        event_x=event_x, event_t=event_t, event_v=event_v,
        particle_x=particle_x, particle_t=particle_t, particle_v=particle_v,
    )
    return {key: np.asarray(value, dtype=np.float32) for key, value in inputs.items()}


def input_signature(tf) -> dict:
    """TensorSpecs of :func:`diffusion_inputs`, with free batch and particle axes (one trace for all batches)."""
    spec = tf.TensorSpec
    return {
        "gen": spec([None, None, ft.F_GEN], tf.float32),
        "gen_mask": spec([None, None], tf.float32),
        "gen_globals": spec([None, ft.G_GEN], tf.float32),
        "pfc_class": spec([None, None, ft.N_CLASSES], tf.float32),
        "pfc_mask": spec([None, None], tf.float32),
        "particle_globals": spec([None, ft.G_PARTICLE], tf.float32),
        "event_x": spec([None, ft.E_PFC], tf.float32),
        "event_t": spec([None], tf.float32),
        "event_v": spec([None, ft.E_PFC], tf.float32),
        "particle_x": spec([None, None, ft.F_KIN], tf.float32),
        "particle_t": spec([None], tf.float32),
        "particle_v": spec([None, None, ft.F_KIN], tf.float32),
    }


def stage_losses(tf, event_net, particle_net, inputs, training: bool):
    """Return (event loss, particle loss, real PFC count) of one batch; see the module docstring."""
    event_prediction = event_net(
        {"x": inputs["event_x"], "t": inputs["event_t"], "gen": inputs["gen"], "gen_mask": inputs["gen_mask"], "gen_globals": inputs["gen_globals"]},
        training=training,
    )
    event_loss = tf.reduce_mean(tf.square(event_prediction - inputs["event_v"]))

    particle_prediction = particle_net(
        {
            "x": inputs["particle_x"],
            "pfc_class": inputs["pfc_class"],
            "pfc_mask": inputs["pfc_mask"],
            "t": inputs["particle_t"],
            "gen": inputs["gen"],
            "gen_mask": inputs["gen_mask"],
            "particle_globals": inputs["particle_globals"],
        },
        training=training,
    )
    mask = inputs["pfc_mask"]
    squared = tf.reduce_sum(tf.square(particle_prediction - inputs["particle_v"]), axis=-1) * mask
    real = tf.reduce_sum(mask)
    particle_loss = tf.reduce_sum(squared) / (ft.F_KIN * tf.maximum(real, 1.0))
    return event_loss, particle_loss, real


# --- the trainer -------------------------------------------------------------------------


class Trainer:
    """Networks, EMA copies, optimisers and the compiled train and validation steps."""

    def __init__(self, config: dict[str, Any], table: dict[str, Standardisation], total_steps: int):
        tf = import_tensorflow()
        import keras

        self.tf = tf
        self.config = config
        self.table = table
        settings = config["training"]

        self.networks = ckpt.build_networks(config, table)
        self.ema = ckpt.build_networks(config, table)
        for key in ckpt.NETWORKS:
            ckpt.copy_weights(self.networks[key], self.ema[key])

        self.optimizers = {}
        for key in ckpt.NETWORKS:
            schedule = keras.optimizers.schedules.CosineDecay(
                initial_learning_rate=settings["learning_rate"],
                decay_steps=max(int(total_steps), 1),
                alpha=settings["min_learning_rate"] / settings["learning_rate"],
            )
            optimizer = keras.optimizers.Lion(
                learning_rate=schedule,
                beta_1=settings["beta_1"],
                beta_2=settings["beta_2"],
                weight_decay=settings["weight_decay"] or None,
            )
            optimizer.build(self.networks[key].trainable_variables)
            self.optimizers[key] = optimizer

        self.ema_decay = float(settings["ema_decay"])
        signature = [input_signature(tf)]
        self.train_step = tf.function(self._train_step, input_signature=signature)
        self.validation_step = tf.function(self._validation_step, input_signature=signature)

    def _train_step(self, inputs):
        tf = self.tf
        with tf.GradientTape(persistent=True) as tape:
            event_loss, particle_loss, real = stage_losses(tf, self.networks["event"], self.networks["particle"], inputs, training=True)
        for key, loss in (("event", event_loss), ("particle", particle_loss)):
            variables = self.networks[key].trainable_variables
            gradients = tape.gradient(loss, variables)
            self.optimizers[key].apply_gradients(zip(gradients, variables))
            self._update_ema(key)
        del tape
        return event_loss, particle_loss, real

    def _update_ema(self, key: str) -> None:
        tf = self.tf
        step = tf.cast(self.optimizers[key].iterations, tf.float32)
        decay = tf.minimum(self.ema_decay, (1.0 + step) / (10.0 + step))
        for average, weight in zip(self.ema[key].weights, self.networks[key].weights):
            average.assign(decay * average + (1.0 - decay) * weight)

    def _validation_step(self, inputs):
        return stage_losses(self.tf, self.ema["event"], self.ema["particle"], inputs, training=False)

    def run_batch(self, inputs: dict[str, np.ndarray], train: bool) -> tuple[float, float, float]:
        step = self.train_step if train else self.validation_step
        event_loss, particle_loss, real = step({key: self.tf.constant(value) for key, value in inputs.items()})
        return float(event_loss), float(particle_loss), float(real)

    def save(self, directory: Path) -> None:
        ckpt.save_weights(directory, {**self.networks, **{f"{key}_ema": net for key, net in self.ema.items()}})
        for key in ckpt.NETWORKS:
            ckpt.save_optimizer(directory, key, self.optimizers[key])

    def restore(self, directory: Path) -> None:
        for key in ckpt.NETWORKS:
            ckpt.load_weights(directory, key, self.networks[key])
            ckpt.load_weights(directory, f"{key}_ema", self.ema[key])
            ckpt.load_optimizer(directory, key, self.optimizers[key])


class LossMeter:
    """Event-weighted mean of the event loss and PFC-weighted mean of the particle loss."""

    def __init__(self):
        self.event_sum = self.particle_sum = 0.0
        self.events = self.particles = 0.0

    def add(self, event_loss: float, particle_loss: float, events: int, particles: float) -> None:
        self.event_sum += event_loss * events
        self.particle_sum += particle_loss * particles
        self.events += events
        self.particles += particles

    def result(self) -> tuple[float, float]:
        return self.event_sum / max(self.events, 1.0), self.particle_sum / max(self.particles, 1.0)


def validation_losses(trainer: Trainer, stream: dt.EventStream, seed: int) -> tuple[float, float]:
    """Return the EMA networks' losses on a validation stream.

    Times, noise and dequantisation come from a generator seeded with ``seed`` on
    every call, so the value changes between epochs only because the weights do.
    """
    rng = np.random.default_rng(seed)
    meter = LossMeter()
    for batch in dt.iterate_batches(stream, trainer.table, trainer.config["training"]["batch_size"], None):
        inputs = diffusion_inputs(batch, trainer.table, rng)
        event_loss, particle_loss, real = trainer.run_batch(inputs, train=False)
        meter.add(event_loss, particle_loss, len(batch["ht"]), real)
    return meter.result()


def steps_per_epoch(stream: dt.EventStream, batch_size: int) -> int:
    """Count the batches of one epoch: chunks are cut into batches separately."""
    stream.count()
    steps = 0
    for events in stream.counts.values():
        full, rest = divmod(events, stream.chunk_size)
        steps += full * math.ceil(stream.chunk_size / batch_size) + math.ceil(rest / batch_size)
    return steps


# --- entry point -------------------------------------------------------------------------


def train(
    data: list[Path],
    card: DetectorCard,
    out_dir: Path,
    *,
    preset: str = "small",
    validation: list[Path] | None = None,
    epochs: int | None = None,
    resume: bool = False,
    device: str | None = None,
    seed: int = 0,
    config_overrides: dict[str, Any] | None = None,
) -> Path:
    """Train both stages on (GEN, PFC) files and write a checkpoint after every epoch.

    Args:
        data: training files with GEN and PFC.
        card: the detector card (preprocessing, normalisation defaults).
        out_dir: the checkpoint folder.
        preset: ``paper``, ``small`` or ``tiny``.
        validation: files for the validation loss after each epoch, or None.
        epochs: total epochs of the run (the preset's when None); with ``resume``
            training continues until this many epochs are complete.
        resume: continue from the checkpoint in ``out_dir``.
        device: ``auto`` (None), ``cpu`` or ``gpu``.
        seed: seeds the initial weights, the batch order, times and noise.
        config_overrides: configuration changes (see :func:`make_config`); ignored
            when resuming, which uses the stored configuration.

    Returns:
        ``out_dir``.

    Raises:
        InvalidInputError: bad input files or settings.
        CheckpointError: ``out_dir`` contains a checkpoint and ``resume`` is false, or
            the checkpoint to resume from is invalid.
    """
    tf = import_tensorflow()
    import keras

    out_dir = Path(out_dir)
    data = [Path(path) for path in data]
    if not data:
        raise InvalidInputError("no training files given")
    for path in data + [Path(p) for p in validation or []]:
        if not path.is_file():
            raise InvalidInputError(f"training file {path} not found")

    has_checkpoint = (out_dir / "model.yaml").is_file()
    if has_checkpoint and not resume:
        raise CheckpointError(f"{out_dir} already contains a checkpoint; pass --resume to continue it or choose another folder")
    if resume and not has_checkpoint:
        raise CheckpointError(f"cannot resume: {out_dir} contains no checkpoint (model.yaml not found)")

    if resume:
        info = ckpt.read_info(out_dir, card.name)
        config = info["config"]
        preset = info.get("preset", preset)
        table = ckpt.load_table(info, out_dir)
        done = int(info["epochs_completed"])
        history = list(info.get("history", []))
        seed = int(info.get("seed", seed))
    else:
        config = make_config(preset, config_overrides)
        done = 0
        history = []

    settings = config["training"]
    total_epochs = int(epochs if epochs is not None else settings["epochs"])
    if total_epochs < 1:
        raise InvalidInputError(f"epochs must be at least 1, not {total_epochs}")
    if done >= total_epochs:
        log.info("%s already has %d of %d epochs; nothing to do", out_dir, done, total_epochs)
        return out_dir

    stream = dt.EventStream(data, card, chunk_size=int(settings["chunk_size"]), max_events=settings["max_events"])
    validation_stream = dt.EventStream([Path(p) for p in validation], card, chunk_size=int(settings["chunk_size"])) if validation else None
    first = stream.first_events(int(settings["normalisation_events"]))
    if not resume:
        table = ft.fit_backend_normalisation(first, card.normalisation)
    summary = dt.summarise(stream, first)
    n_events = summary["events"]

    batch_size = int(settings["batch_size"])
    per_epoch = steps_per_epoch(stream, batch_size)
    log.info(
        "training the diffusion backend (%s preset) on %d events from %d files: %d epochs, %d steps per epoch",
        preset, n_events, len(data), total_epochs, per_epoch,
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    with on_device(device) as device_used:
        log.info("training on %s", device_used)
        keras.utils.set_random_seed(seed)
        trainer = Trainer(config, table, total_steps=per_epoch * total_epochs)
        if resume:
            trainer.restore(out_dir)
            log.info("resumed %s after epoch %d", out_dir, done)

        rate = RateLogger(log, total=(total_epochs - done) * n_events, what="training")
        bar = progress_bar((total_epochs - done) * n_events, "training")
        try:
            for epoch in range(done, total_epochs):
                started = time.perf_counter()
                rng = np.random.default_rng([seed, epoch])
                meter = LossMeter()
                for batch in dt.iterate_batches(stream, table, batch_size, rng):
                    inputs = diffusion_inputs(batch, table, rng)
                    event_loss, particle_loss, real = trainer.run_batch(inputs, train=True)
                    if not (math.isfinite(event_loss) and math.isfinite(particle_loss)):
                        raise FloatingPointError(
                            f"training diverged in epoch {epoch + 1}: event loss {event_loss}, particle loss {particle_loss}; "
                            "lower training.learning_rate"
                        )
                    size = len(batch["ht"])
                    meter.add(event_loss, particle_loss, size, real)
                    rate.update(size)
                    bar.update(size)
                    bar.set_postfix(event=f"{event_loss:.3f}", particle=f"{particle_loss:.3f}")

                seconds = time.perf_counter() - started
                train_event, train_particle = meter.result()
                record = {
                    "epoch": epoch + 1,
                    "event_loss": train_event,
                    "particle_loss": train_particle,
                    "seconds": round(seconds, 2),
                    "events_per_second": round(meter.events / max(seconds, 1e-9), 2),
                }
                if validation_stream is not None:
                    val_event, val_particle = validation_losses(trainer, validation_stream, int(settings["validation_seed"]))
                    record.update(validation_event_loss=val_event, validation_particle_loss=val_particle)
                history.append(record)
                log.info(
                    "epoch %d/%d: event loss %.4f, particle loss %.4f%s, %.1f events/s, %s",
                    epoch + 1, total_epochs, train_event, train_particle,
                    (f", validation {record['validation_event_loss']:.4f} / {record['validation_particle_loss']:.4f}"
                     if validation_stream is not None else ""),
                    record["events_per_second"], rate.status(),
                )

                trainer.save(out_dir)
                write_model_yaml(
                    out_dir,
                    {
                        "backend": ckpt.BACKEND_NAME,
                        "detector": card.name,
                        "preset": preset,
                        "config": config,
                        "normalisation": normalisation_to_dict(table),
                        "training_data": summary,
                        "validation_data": [str(path) for path in validation or []],
                        "seed": int(seed),
                        "epochs_completed": epoch + 1,
                        "epochs_planned": total_epochs,
                        "history": history,
                        "weights": dict(ckpt.WEIGHT_FILES),
                    },
                )
        finally:
            bar.close()
        rate.finish()
    return out_dir

