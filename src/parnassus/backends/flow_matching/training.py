"""Training of both stages with conditional flow matching (CFM).

Path (``parnassus.core.paths.FlowMatchingPath``, t = 0 data, t = 1 noise):

    x_t = (1 - t) x_data + t eps,    target velocity u = eps - x_data.

Losses, per batch:

- event stage: mean of (v - u)^2 over the batch and the 4 event quantities;
  t is drawn with density ``p (1 - t)^(p - 1)`` (``event_time_power`` p);
- particle stage, over real PFC slots only (mask m), t ~ U(0, 1):
  L = [sum m (v - u)^2 + w sum m (1 - cos(v, u))] / (12 N_real), the CFM loss plus
  the direction term of arXiv:2503.19981 (Table II, L_CFM + L_sim), where cos is
  the cosine similarity of the 12-dim velocities of one particle.

Both stages see the same batches and train together: Lion (arXiv:2302.06675),
cosine learning-rate decay after a linear warm-up, gradient-norm clipping, and an
exponential moving average (EMA) of the weights that starts from the initial
weights and is what sampling uses. A checkpoint is written after every epoch.
"""

from __future__ import annotations

import copy
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from parnassus.backends.flow_matching import data as fm_data
from parnassus.backends.flow_matching import features as ft
from parnassus.backends.flow_matching import persistence as store
from parnassus.backends.flow_matching.presets import make_config
from parnassus.backends.flow_matching.runtime import build_networks, count_parameters, import_torch, select_device, use_all_cpus
from parnassus.core.checkpoint import MODEL_YAML, normalisation_from_dict, normalisation_to_dict, write_model_yaml
from parnassus.core.detector import DetectorCard
from parnassus.core.progress import RateLogger, progress_bar
from parnassus.exceptions import InvalidInputError

log = logging.getLogger(__name__)


def learning_rate(step: int, total_steps: int, config: dict[str, Any]) -> float:
    """Return the learning rate at optimiser step ``step``.

    Linear warm-up from lr_min to lr_max over ``warmup_fraction`` of the steps,
    then cosine annealing to lr_min (arXiv:1608.03983, without restarts).
    """
    lr_max, lr_min = config["lr_max"], config["lr_min"]
    warmup = max(int(config["warmup_fraction"] * total_steps), 1)
    if step < warmup:
        return lr_min + (lr_max - lr_min) * step / warmup
    progress = min((step - warmup) / max(total_steps - warmup, 1), 1.0)
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * progress))


def interpolate(path, x_data, noise, t):
    """Return ``(x_t, u)``: the point on the path and the target velocity at per-event times ``t`` ``(batch,)``."""
    t = t.view(-1, *([1] * (x_data.dim() - 1)))
    return path.interpolate(x_data, noise, t), path.velocity_target(x_data, noise, t)


def event_loss(net, batch: dict, path, generator, time_power: float):
    """CFM loss of the event stage on one batch (a scalar tensor)."""
    torch = import_torch()
    target = batch["event_target"]
    noise = torch.randn(target.shape, generator=generator, device=target.device)
    uniform = torch.rand(target.shape[0], generator=generator, device=target.device)
    t = 1 - uniform ** (1 / time_power)
    x_t, u = interpolate(path, target, noise, t)
    v = net(x_t, t, batch["gen"], batch["gen_mask"], batch["event_globals"])
    return ((v - u) ** 2).mean()


def particle_loss(net, batch: dict, path, generator, cosine_weight: float):
    """CFM plus cosine-direction loss of the particle stage on one batch, over real PFC slots."""
    torch = import_torch()
    x_data, mask = batch["pfc"], batch["pfc_mask"]
    noise = torch.randn(x_data.shape, generator=generator, device=x_data.device)
    t = torch.rand(x_data.shape[0], generator=generator, device=x_data.device)
    x_t, u = interpolate(path, x_data, noise, t)
    v = net(x_t, t, mask, batch["gen"], batch["gen_mask"], batch["particle_globals"])

    weight = mask.to(v.dtype)
    squared = (((v - u) ** 2).sum(dim=-1) * weight).sum()
    cosine = torch.nn.functional.cosine_similarity(v, u, dim=-1)
    direction = ((1 - cosine) * weight).sum()
    return (squared + cosine_weight * direction) / (weight.sum() * ft.N_PARTICLE_FEATURES)


def update_ema(ema, net, decay: float, step: int) -> None:
    """EMA update p_ema <- d p_ema + (1 - d) p with d = min(decay, (1 + step) / (10 + step)).

    The warm-up of d lets the average leave the random initial weights quickly.
    """
    torch = import_torch()
    d = min(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for averaged, current in zip(ema.parameters(), net.parameters()):
            averaged.lerp_(current, 1 - d)


class Trainer:
    """Train both networks on a data source and write a checkpoint after each epoch.

    Args:
        source: training files or an events array.
        card: the detector card.
        out_dir: the checkpoint folder.
        config: the full configuration (preset plus overrides).
        norm: the normalisation table.
        device: a torch device.
        seed: the random seed.
        validation: validation files or events, or None.
    """

    def __init__(self, source, card: DetectorCard, out_dir: Path, config, norm, device, seed: int, validation=None):
        torch = import_torch()
        from parnassus.backends.flow_matching.lion import Lion
        from parnassus.core.paths import FlowMatchingPath

        self.torch = torch
        self.source, self.card, self.out_dir = source, card, Path(out_dir)
        self.config, self.norm, self.device, self.seed = config, norm, device, seed
        self.path = FlowMatchingPath()

        torch.manual_seed(seed)
        self.event_net, self.particle_net = (net.to(device) for net in build_networks(config))
        self.event_ema = copy.deepcopy(self.event_net).requires_grad_(False)
        self.particle_ema = copy.deepcopy(self.particle_net).requires_grad_(False)
        betas = (config["beta1"], config["beta2"])
        self.event_opt = Lion(self.event_net.parameters(), lr=config["lr_min"], betas=betas, weight_decay=config["weight_decay"])
        self.particle_opt = Lion(self.particle_net.parameters(), lr=config["lr_min"], betas=betas, weight_decay=config["weight_decay"])

        chunk, limit = config["chunk_size"], config["max_events"]
        self.stream = fm_data.BatchStream(source, card, norm, config["batch_size"], chunk, limit)
        self.validation = fm_data.BatchStream(validation, card, norm, config["batch_size"], chunk, limit) if validation is not None else None

        self.epochs_completed = 0
        self.step = 0
        self.history: list[dict[str, float]] = []
        log.info(
            "flow-matching networks: event stage %d, particle stage %d trainable parameters",
            count_parameters(self.event_net),
            count_parameters(self.particle_net),
        )

    # --- checkpoints -------------------------------------------------------------

    def _optimizer_tensors(self) -> dict:
        tensors = {}
        for prefix, net, opt in (("event", self.event_net, self.event_opt), ("particle", self.particle_net, self.particle_opt)):
            for name, param in net.named_parameters():
                state = opt.state.get(param)
                if state:
                    tensors[f"{prefix}.{name}"] = state["exp_avg"]
        return tensors

    def restore(self, info: dict) -> None:
        """Load weights, EMA weights and optimiser state of a checkpoint written by :meth:`save`."""
        epoch = int(info["epochs_completed"])
        store.load_module(self.event_net, self.out_dir, store.EVENT, epoch, self.device)
        store.load_module(self.particle_net, self.out_dir, store.PARTICLE, epoch, self.device)
        store.load_module(self.event_ema, self.out_dir, store.EVENT_EMA, epoch, self.device)
        store.load_module(self.particle_ema, self.out_dir, store.PARTICLE_EMA, epoch, self.device)
        momenta = store.load_tensors(self.out_dir, store.OPTIMIZER, epoch, self.device)
        for prefix, net, opt in (("event", self.event_net, self.event_opt), ("particle", self.particle_net, self.particle_opt)):
            for name, param in net.named_parameters():
                key = f"{prefix}.{name}"
                if key in momenta:
                    opt.state[param]["exp_avg"] = momenta[key].clone()
        self.epochs_completed = epoch
        self.step = int(info.get("optimizer_steps", 0))
        self.history = list(info.get("history", []))
        log.info("resuming from %s after epoch %d (%d optimiser steps)", self.out_dir, epoch, self.step)

    def save(self, summary: dict) -> None:
        """Write the weights, then ``model.yaml`` (last, so it never names missing weights)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        epoch = self.epochs_completed
        store.save_tensors(self.out_dir, store.EVENT, self.event_net.state_dict(), epoch)
        store.save_tensors(self.out_dir, store.PARTICLE, self.particle_net.state_dict(), epoch)
        store.save_tensors(self.out_dir, store.EVENT_EMA, self.event_ema.state_dict(), epoch)
        store.save_tensors(self.out_dir, store.PARTICLE_EMA, self.particle_ema.state_dict(), epoch)
        store.save_tensors(self.out_dir, store.OPTIMIZER, self._optimizer_tensors(), epoch)
        import parnassus

        info = {
            "backend": store.BACKEND_NAME,
            "detector": self.card.name,
            "layout_version": store.LAYOUT_VERSION,
            "torch_version": str(self.torch.__version__),
            "preset": summary["preset"],
            "config": self.config,
            "normalisation": normalisation_to_dict(self.norm),
            "training_data": {**summary["training_data"], "events_left_out_without_pfc": self.stream.dropped_events},
            "epochs_completed": epoch,
            "optimizer_steps": self.step,
            "seed": int(self.seed),
            "history": self.history,
            "parameters": {"event": count_parameters(self.event_net), "particle": count_parameters(self.particle_net)},
            "sampling_weights": "exponential moving average (event_ema, particle_ema)",
            "command": summary["command"],
            "parnassus_version_trained": parnassus.__version__,
        }
        write_model_yaml(self.out_dir, info)
        log.info("saved checkpoint of epoch %d to %s", epoch, self.out_dir)

    # --- epochs --------------------------------------------------------------------

    def _generator(self, *key: int):
        generator = self.torch.Generator(device=self.device)
        generator.manual_seed(int(np.random.SeedSequence([self.seed, *key]).generate_state(1)[0]))
        return generator

    def _train_batch(self, batch: dict, generator, total_steps: int) -> tuple[float, float]:
        torch = self.torch
        lr = learning_rate(self.step, total_steps, self.config)
        results = []
        for net, ema, opt, loss_fn, argument in (
            (self.event_net, self.event_ema, self.event_opt, event_loss, self.config["event_time_power"]),
            (self.particle_net, self.particle_ema, self.particle_opt, particle_loss, self.config["cosine_weight"]),
        ):
            for group in opt.param_groups:
                group["lr"] = lr
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net, batch, self.path, generator, argument)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"training loss became {loss.item()} at step {self.step}; lower lr_max or check the input data"
                )
            loss.backward()
            if self.config["grad_clip"] > 0:
                torch.nn.utils.clip_grad_norm_(net.parameters(), self.config["grad_clip"])
            opt.step()
            update_ema(ema, net, self.config["ema_decay"], self.step)
            results.append(loss.item())
        self.step += 1
        return results[0], results[1]

    def validation_loss(self) -> dict[str, float] | None:
        """Return the losses of the EMA networks on the validation data, with fixed noise."""
        if self.validation is None:
            return None
        torch = self.torch
        generator = self._generator(1 << 30)
        sums, events = np.zeros(2), 0
        with torch.no_grad():
            for batch in self.validation(None):
                tensors = batch.to_torch(self.device)
                e = event_loss(self.event_ema, tensors, self.path, generator, self.config["event_time_power"]).item()
                p = particle_loss(self.particle_ema, tensors, self.path, generator, self.config["cosine_weight"]).item()
                sums += np.array([e, p]) * len(batch)
                events += len(batch)
        if events == 0:
            log.warning("the validation data has no usable event")
            return None
        return {"val_event_loss": float(sums[0] / events), "val_particle_loss": float(sums[1] / events)}

    def fit(self, epochs: int, summary: dict) -> None:
        """Train until ``epochs`` epochs are completed, saving after each."""
        events_per_epoch = max(summary["training_data"]["events"], 1)
        steps_per_epoch = max(math.ceil(events_per_epoch / self.config["batch_size"]), 1)
        total_steps = epochs * steps_per_epoch
        remaining = epochs - self.epochs_completed
        if remaining <= 0:
            log.info("the checkpoint already has %d of %d epochs; nothing to train", self.epochs_completed, epochs)
            return

        rate = RateLogger(log, remaining * events_per_epoch, "training")
        with progress_bar(remaining * events_per_epoch, "training") as bar:
            for epoch in range(self.epochs_completed, epochs):
                start = time.perf_counter()
                rng = np.random.default_rng([self.seed, epoch])
                generator = self._generator(epoch)
                self.event_net.train()
                self.particle_net.train()
                sums, seen = np.zeros(2), 0
                for batch in self.stream(rng):
                    losses = self._train_batch(batch.to_torch(self.device), generator, total_steps)
                    sums += np.array(losses) * len(batch)
                    seen += len(batch)
                    bar.update(len(batch))
                    rate.update(len(batch))
                if seen == 0:
                    raise InvalidInputError("the training data has no event with GEN and at least one PFC")

                self.epochs_completed = epoch + 1
                record = {
                    "epoch": epoch + 1,
                    "event_loss": float(sums[0] / seen),
                    "particle_loss": float(sums[1] / seen),
                    "events": seen,
                    "learning_rate": learning_rate(self.step, total_steps, self.config),
                    "seconds": round(time.perf_counter() - start, 3),
                }
                record.update(self.validation_loss() or {})
                self.history.append(record)
                log.info(
                    "epoch %d/%d: event loss %.4f, particle loss %.4f%s, %.1f events/s",
                    epoch + 1,
                    epochs,
                    record["event_loss"],
                    record["particle_loss"],
                    "".join(f", {k} {v:.4f}" for k, v in record.items() if k.startswith("val_")),
                    seen / max(record["seconds"], 1e-9),
                )
                self.save(summary)
        rate.finish()


def train(
    source,
    card: DetectorCard,
    out_dir: Path,
    *,
    preset: str = "small",
    validation=None,
    epochs: int | None = None,
    resume: bool = False,
    device: str | None = None,
    seed: int = 0,
    config_overrides: dict[str, Any] | None = None,
) -> Path:
    """Train the two-stage flow-matching model; see :meth:`FlowMatchingBackend.train`."""
    import_torch()
    use_all_cpus()
    device = select_device(device)
    out_dir = Path(out_dir)
    existing = (out_dir / MODEL_YAML).is_file()
    if existing and not resume:
        raise InvalidInputError(
            f"{out_dir} already contains a checkpoint; pass --resume to continue it or choose another output folder"
        )
    if isinstance(source, (list, tuple)) and not source:
        raise InvalidInputError("no training files given")
    if isinstance(validation, (list, tuple)) and not validation:
        validation = None

    info = None
    if existing:
        info = store.read_info(out_dir, card.name)
        config = dict(info["config"])
        if config_overrides:
            log.warning("resuming: the stored configuration is used and the overrides %s are ignored", config_overrides)
        preset = info.get("preset", preset)
        norm = normalisation_from_dict(info["normalisation"])
    else:
        if resume:
            log.info("--resume: %s contains no checkpoint yet, starting a new training", out_dir)
        config = make_config(preset, config_overrides)
        fit_events = None
        if config["normalisation"] != "card":
            fit_events = fm_data.read_fit_events(source, card, config["fit_events"], config["chunk_size"])
        norm = ft.resolve_normalisation(card, config["normalisation"], fit_events)
    if epochs is not None:
        if epochs < 1:
            raise InvalidInputError(f"epochs must be at least 1, got {epochs}")
        config["epochs"] = int(epochs)

    events = fm_data.count_source_events(source)
    if config["max_events"] is not None:
        events = min(events, int(config["max_events"]))
    summary = {
        "preset": preset,
        "training_data": {
            "files": fm_data.describe_source(source),
            "events": events,
            "validation_files": fm_data.describe_source(validation) if validation is not None else [],
        },
        "command": " ".join(sys.argv),
    }

    trainer = Trainer(source, card, out_dir, config, norm, device, seed, validation)
    if info is not None:
        trainer.restore(info)
    log.info("training %s preset on %d events for %d epochs on %s", preset, events, config["epochs"], device)
    trainer.fit(config["epochs"], summary)
    if not (out_dir / MODEL_YAML).is_file():
        trainer.save(summary)
    return out_dir
