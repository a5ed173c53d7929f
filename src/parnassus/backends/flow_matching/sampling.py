"""Sampling: event stage, then particle stage, with the core ODE solvers.

For each batch of GEN events:

1. the event stage integrates dx/dt = v(x, t) from noise at t = 1 to the PFC
   event quantities at t = 0 (default solver ``pndm``, 25 steps, the event-stage
   sampler of arXiv:2503.19981). Draws with N outside [1, max_particles] or
   HT <= 0 GeV are redrawn with fresh noise and counted in
   :attr:`SamplingReport.redraws`; no event is dropped;
2. the particle stage integrates the PFC set of exactly N particles
   (default ``dpm-solver++2m``, 25 steps), conditioned on the GEN particles and
   the GEN and sampled PFC event quantities;
3. the features are decoded to physical PFCs (:func:`features.decode_particles`).

The noise of each event is drawn for all ``max_particles`` slots and cut to the
batch's padded length, so an event's output does not depend on how long its
batch is padded. It does depend on the seed, the batch size and the set of
events sampled together.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import awkward as ak
import numpy as np

from parnassus.backends.flow_matching import features as ft
from parnassus.backends.flow_matching.runtime import import_torch, use_all_cpus
from parnassus.core import events as ev
from parnassus.core.backend import SamplingReport, TrainedModel
from parnassus.core.detector import DetectorCard
from parnassus.core.progress import RateLogger
from parnassus.exceptions import InvalidInputError

log = logging.getLogger(__name__)

#: Rounds of redraws before an event stage falls back to corrected values.
MAX_REDRAW_ROUNDS = 100


def _solve(solver, velocity, x_init, path, steps: int):
    return solver.sample(velocity, x_init, path, steps)


def sampling_order(gen_events: ak.Array) -> np.ndarray:
    """Return the order in which events are sampled: by GEN multiplicity, ties in input order."""
    return np.argsort(ak.to_numpy(ak.num(gen_events.gen)), kind="stable")


class FlowMatchingModel(TrainedModel):
    """A loaded flow-matching model (EMA weights) ready to sample.

    Args:
        card: the detector card.
        config: the training configuration (sizes and default solvers).
        norm: the normalisation table.
        event_net, particle_net: the networks, on ``device``, in eval mode.
        device: the torch device.
        info: the contents of ``model.yaml``.
    """

    def __init__(self, card: DetectorCard, config: dict[str, Any], norm, event_net, particle_net, device, info=None):
        from parnassus.core.paths import FlowMatchingPath

        self.card = card
        self.config = config
        self.norm = norm
        self.event_net = event_net.eval()
        self.particle_net = particle_net.eval()
        self.device = device
        self.info = info or {}
        self.path = FlowMatchingPath()

    def default_batch_size(self) -> int:
        """Return events per batch, so that one float32 attention matrix over
        ``max_particles`` slots and all heads stays within 256 MiB (CPU) or 2 GiB (GPU)."""
        slots = self.card.max_particles
        budget = (256 if self.device.type == "cpu" else 2048) * 2**20
        per_event = slots * slots * 4 * self.config["particle_heads"]
        return int(np.clip(budget // per_event, 16, 4096))

    # --- event stage -------------------------------------------------------------------

    def sample_event_stage(self, features: ft.ChunkFeatures, generator, solver, steps: int) -> tuple[np.ndarray, int, int]:
        """Sample normalised PFC event quantities for every event of ``features``.

        Returns:
            ``(x, redraws, fallbacks)``: x ``(events, 4)`` normalised with N rounded,
            the number of redrawn draws and the number of events whose draws never
            became valid and were corrected (N clipped to [1, max], HT set to the GEN HT).
        """
        torch = import_torch()
        index = np.arange(len(features))
        gen, gen_mask = ft.pad(features.gen_flat, features.gen_offsets, features.gen_counts)
        gen_t = torch.from_numpy(gen).to(self.device)
        mask_t = torch.from_numpy(gen_mask).to(self.device)
        globals_t = torch.from_numpy(features.event_globals(index).astype(np.float32)).to(self.device)
        condition = self.event_net.condition(gen_t, mask_t, globals_t)

        def draw(rows: np.ndarray) -> np.ndarray:
            rows_t = torch.from_numpy(rows).to(self.device)
            sub_condition = condition[rows_t]
            noise = torch.randn((len(rows), ft.N_EVENT_FEATURES), generator=generator, device=self.device)

            def velocity(x, t):
                return self.event_net.velocity(x, torch.full((x.shape[0],), float(t), device=self.device), sub_condition)

            return _solve(solver, velocity, noise, self.path, steps).cpu().numpy()

        x = draw(index)
        decoded = ft.decode_event(x, self.norm)
        bad = ft.invalid_events(decoded, self.card.max_particles)
        redraws = 0
        for _ in range(MAX_REDRAW_ROUNDS):
            if not bad.any():
                break
            rows = np.flatnonzero(bad)
            redraws += len(rows)
            x[rows] = draw(rows)
            decoded = ft.decode_event(x, self.norm)
            bad = ft.invalid_events(decoded, self.card.max_particles)

        fallbacks = int(bad.sum())
        if fallbacks:
            # NOTE: only a badly trained model gets here. The event is kept with the
            # closest valid values instead of being dropped, and the count is reported.
            log.warning("%d events had no valid event-stage draw in %d rounds; N clipped, HT set to the GEN HT", fallbacks, MAX_REDRAW_ROUNDS)
            gen_ht = self.norm["ht"].inverse(features.gen_event[:, 0].astype(np.float64))
            decoded["n"] = np.clip(decoded["n"], 1, self.card.max_particles)
            decoded["ht"] = np.where(decoded["ht"] > 0, decoded["ht"], np.maximum(gen_ht, 1.0))
            for i, key in enumerate(ft.EVENT_KEYS):
                x[bad, i] = self.norm[key].forward(decoded[key][bad])

        # The particle stage is conditioned on the rounded N, the count it must produce.
        x[:, 1] = self.norm["n"].forward(decoded["n"].astype(np.float64))
        return x.astype(np.float32), redraws, fallbacks

    # --- particle stage ----------------------------------------------------------------

    def sample_particle_stage(
        self, features: ft.ChunkFeatures, pfc_event: np.ndarray, counts: np.ndarray, generator, solver, steps: int, pad_length: int | None = None
    ) -> np.ndarray:
        """Sample normalised PFC features ``(events, padded length, 12)``; slots past ``counts`` are padding.

        Args:
            features: GEN features of the events.
            pfc_event: normalised PFC event quantities ``(events, 4)``.
            counts: PFC multiplicity of each event (the rounded sampled N).
            generator: the torch random generator.
            solver: a core solver instance.
            steps: solver steps.
            pad_length: padded PFC length (>= max(counts)); max(counts) when None.
        """
        torch = import_torch()
        index = np.arange(len(features))
        length = int(pad_length or counts.max())
        gen, gen_mask = ft.pad(features.gen_flat, features.gen_offsets, features.gen_counts)
        gen_t = torch.from_numpy(gen).to(self.device)
        gen_mask_t = torch.from_numpy(gen_mask).to(self.device)
        globals_t = torch.from_numpy(features.particle_globals(index, pfc_event)).to(self.device)
        pfc_mask_t = torch.from_numpy(np.arange(length)[None, :] < counts[:, None]).to(self.device)
        condition = self.particle_net.condition(gen_t, gen_mask_t, globals_t)

        full = max(self.card.max_particles, length)
        noise = torch.randn((len(index), full, ft.N_PARTICLE_FEATURES), generator=generator, device=self.device)
        noise = noise[:, :length] * pfc_mask_t.unsqueeze(-1)

        def velocity(x, t):
            time_t = torch.full((x.shape[0],), float(t), device=self.device)
            return self.particle_net.velocity(x, time_t, pfc_mask_t, gen_mask_t, condition)

        return _solve(solver, velocity, noise, self.path, steps).cpu().numpy()

    # --- public -----------------------------------------------------------------------

    def sample(
        self,
        gen_events: ak.Array,
        *,
        solver: str | None = None,
        steps: int | None = None,
        seed: int = 0,
        batch_size: int | None = None,
        event_solver: str | None = None,
        event_steps: int | None = None,
    ) -> tuple[ak.Array, SamplingReport]:
        """Sample PFCs for preprocessed GEN events (see :meth:`TrainedModel.sample`).

        Args:
            gen_events: events with a ``gen`` field, passed through ``card.preprocess``.
            solver: particle-stage solver; the configuration's (``dpm-solver++2m``) when None.
            steps: particle-stage steps; the configuration's (25) when None.
            seed: the random seed.
            batch_size: events per network batch; from the memory budget when None.
            event_solver: event-stage solver; the configuration's (``pndm``) when None.
            event_steps: event-stage steps; the configuration's (25) when None.

        Events are sampled in batches of similar GEN multiplicity
        (:func:`sampling_order`) and returned in the input order.

        Returns:
            The events ``{gen, pfc, event_number}`` and a :class:`SamplingReport`
            whose ``details`` hold the counts of clamped pT and eta values and of
            event-stage fallbacks.
        """
        from parnassus.core.plugins import load_solver

        torch = import_torch()
        use_all_cpus()
        if "gen" not in ak.fields(gen_events):
            raise InvalidInputError("sample() needs events with a gen field")
        steps = int(steps or self.config["particle_steps"])
        event_steps = int(event_steps or self.config["event_steps"])
        particle_solver = load_solver(solver or self.config["particle_solver"])
        event_solver_obj = load_solver(event_solver or self.config["event_solver"])
        batch_size = int(batch_size or self.default_batch_size())
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be at least 1, got {batch_size}")

        generator = torch.Generator(device=self.device)
        generator.manual_seed(int(seed))
        report = SamplingReport(details={"pt_clamped": 0, "eta_clamped": 0, "event_fallbacks": 0})
        outputs = []
        rate = RateLogger(log, len(gen_events), "sampling")
        # Batches of similar GEN multiplicity need less padding, which makes the
        # attention cheaper; the output is put back in the input order below.
        order = sampling_order(gen_events)
        with torch.inference_mode():
            for start in range(0, len(gen_events), batch_size):
                chunk = gen_events[order[start : start + batch_size]]
                outputs.append(self._sample_batch(chunk, generator, event_solver_obj, event_steps, particle_solver, steps, report))
                rate.update(len(chunk))
        rate.finish()

        if outputs:
            pfc = ak.concatenate(outputs)[np.argsort(order)]
        else:
            empty = gen_events.gen
            pfc = ev.make_particles(*(empty[name] for name in ev.PARTICLE_FIELDS))
        report.events = len(gen_events)
        result = ev.make_events(gen_events.gen, pfc, gen_events.event_number if "event_number" in ak.fields(gen_events) else None)
        return result, report

    def _sample_batch(self, chunk, generator, event_solver, event_steps, particle_solver, steps, report) -> ak.Array:
        features = ft.chunk_features(ev.make_events(chunk.gen), self.norm)

        start = time.perf_counter()
        pfc_event, redraws, fallbacks = self.sample_event_stage(features, generator, event_solver, event_steps)
        report.redraws += redraws
        report.details["event_fallbacks"] += fallbacks
        report.event_stage_seconds += time.perf_counter() - start

        start = time.perf_counter()
        decoded = ft.decode_event(pfc_event, self.norm)
        x = self.sample_particle_stage(features, pfc_event, decoded["n"], generator, particle_solver, steps)
        particles, decode_report = ft.decode_particles(x, decoded["n"], decoded["ht"], self.norm, self.card)
        report.details["pt_clamped"] += decode_report.pt_clamped
        report.details["eta_clamped"] += decode_report.eta_clamped
        report.particle_stage_seconds += time.perf_counter() - start
        return particles
