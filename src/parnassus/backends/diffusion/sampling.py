"""Sampling of the diffusion backend: event stage, then particle stage, with a core solver.

Both stages integrate the probability-flow ODE of the cosine path from t = 1
(noise) to t = 0 (data) with a solver of :mod:`parnassus.core.solvers`
(DPM-Solver-2 with 64 steps, 128 network evaluations, by default, as in Table III
of arXiv:2503.19981). The networks predict v = alpha_t eps - sigma_t x; the solver
receives dx_t/dt = (pi/2) v (:meth:`CosinePath.velocity_from_v_prediction`).

Event stage: class multiplicities are rounded to non-negative integers and
N = sum over classes. Draws with N outside [1, max_particles] or HT <= 0 are
redrawn with fresh noise (never dropped), and the redraws are counted.

Particle stage: every event gets exactly N_c slots of class c; the network
generates the kinematics and vertex of each slot. pT = HT * w_i / sum_j w_j with
w_i = exp(log(pT/HT)_i) (see :func:`~parnassus.backends.diffusion.features.invert_particles`),
so pT > 0 and the pT of an event sum to the drawn HT.

Random numbers: the noise of event i is drawn from a numpy generator seeded with
(seed, stage, i, attempt), so an event's output depends only on the seed, its
position in the input and its GEN particles, not on the batch size, the other
events of its batch or the padding length.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import awkward as ak
import numpy as np

from parnassus.core import events as ev
from parnassus.core.backend import SamplingReport, TrainedModel, sampled_pfc
from parnassus.core.detector import DetectorCard, Standardisation
from parnassus.core.paths import CosinePath
from parnassus.core.plugins import load_solver
from parnassus.core.progress import RateLogger
from parnassus.exceptions import InvalidInputError
from parnassus.backends.diffusion import checkpoint as ckpt
from parnassus.backends.diffusion import data as dt
from parnassus.backends.diffusion import features as ft
from parnassus.backends.diffusion.runtime import device_name, import_tensorflow

log = logging.getLogger(__name__)

PATH = CosinePath()

_EVENT_STAGE = 0
_PARTICLE_STAGE = 1


def event_noise(seed: int, indices: np.ndarray, attempt: int) -> np.ndarray:
    """Return the event-stage starting noise ``(len(indices), 8)`` of the given events."""
    return np.stack(
        [np.random.default_rng([seed, _EVENT_STAGE, int(i), attempt]).standard_normal(ft.E_PFC) for i in indices]
    ).astype(np.float32)


def particle_noise(seed: int, index: int, count: int) -> np.ndarray:
    """Return the particle-stage starting noise ``(count, 7)`` of one event."""
    return np.random.default_rng([seed, _PARTICLE_STAGE, int(index)]).standard_normal((count, ft.F_KIN)).astype(np.float32)


def invalid_draws(draw: ft.EventDraw, max_particles: int) -> np.ndarray:
    """Return a boolean mask of event draws that cannot be used: N < 1, N > max_particles, HT <= 0 or not finite."""
    n = draw.n
    finite = np.isfinite(draw.ht) & np.isfinite(draw.met_x) & np.isfinite(draw.met_y)
    return (n < 1) | (n > max_particles) | ~(draw.ht > 0) | ~finite


class DiffusionModel(TrainedModel):
    """A loaded diffusion checkpoint: sample PFCs for GEN events.

    Attributes:
        card: the detector card.
        directory: the checkpoint folder.
        info: the content of ``model.yaml``.
        config: the configuration it was trained with.
        table: its normalisation table.
    """

    def __init__(self, directory: Path, card: DetectorCard, info: dict, networks: dict, table: dict[str, Standardisation], device: str):
        tf = import_tensorflow()
        self.tf = tf
        self.directory = Path(directory)
        self.card = card
        self.info = info
        self.config = info["config"]
        self.table = table
        self.device = device
        self.event_net = networks["event"]
        self.particle_net = networks["particle"]

        spec = tf.TensorSpec
        self._event_velocity = tf.function(
            self._event_velocity_fn,
            input_signature=[
                spec([None, ft.E_PFC], tf.float32),
                spec([], tf.float32),
                spec([None, None, ft.F_GEN], tf.float32),
                spec([None, None], tf.float32),
                spec([None, ft.G_GEN], tf.float32),
            ],
        )
        self._particle_velocity = tf.function(
            self._particle_velocity_fn,
            input_signature=[
                spec([None, None, ft.F_KIN], tf.float32),
                spec([], tf.float32),
                spec([None, None, ft.N_CLASSES], tf.float32),
                spec([None, None], tf.float32),
                spec([None, None, ft.F_GEN], tf.float32),
                spec([None, None], tf.float32),
                spec([None, ft.G_PARTICLE], tf.float32),
            ],
        )

    # --- network calls -------------------------------------------------------------------

    def _event_velocity_fn(self, x, t, gen, gen_mask, gen_globals):
        times = self.tf.fill([self.tf.shape(x)[0]], t)
        v = self.event_net({"x": x, "t": times, "gen": gen, "gen_mask": gen_mask, "gen_globals": gen_globals}, training=False)
        return PATH.velocity_from_v_prediction(v)

    def _particle_velocity_fn(self, x, t, pfc_class, pfc_mask, gen, gen_mask, particle_globals):
        times = self.tf.fill([self.tf.shape(x)[0]], t)
        v = self.particle_net(
            {
                "x": x, "t": times, "pfc_class": pfc_class, "pfc_mask": pfc_mask,
                "gen": gen, "gen_mask": gen_mask, "particle_globals": particle_globals,
            },
            training=False,
        )
        # The network output is 0 at padded slots, so padded noise stays where it started.
        return PATH.velocity_from_v_prediction(v) * pfc_mask[:, :, None]

    # --- stages --------------------------------------------------------------------------

    def _gen_batch(self, gen_features: ak.Array, gen_n: np.ndarray, index: np.ndarray):
        length = max(int(gen_n[index].max(initial=0)), 1)
        tf = self.tf
        return (
            tf.constant(dt.pad_jagged(gen_features[index], length, ft.F_GEN)),
            tf.constant(dt.mask_of(gen_n[index], length)),
        )

    def _solve_events(self, solver, steps, grid, gen_features, gen_n, gen_globals, index, noise) -> np.ndarray:
        tf = self.tf
        gen, gen_mask = self._gen_batch(gen_features, gen_n, index)
        globals_ = tf.constant(gen_globals[index])

        def velocity(x, t):
            return self._event_velocity(x, tf.constant(t, tf.float32), gen, gen_mask, globals_)

        return solver.sample(velocity, tf.constant(noise), PATH, steps, time_grid=grid).numpy()

    def _event_stage(self, solver, steps, grid, seed, batch_size, gen_features, gen_n, gen_globals, report):
        n_events = len(gen_n)
        vectors = np.zeros((n_events, ft.E_PFC), dtype=np.float64)
        attempts = np.zeros(n_events, dtype=np.int64)
        pending = np.arange(n_events)
        max_rounds = int(self.config["sampling"]["max_redraw_rounds"])

        for round_index in range(max_rounds + 1):
            # Events with similar GEN multiplicity share a batch, to keep padding small.
            order = pending[np.argsort(gen_n[pending], kind="stable")]
            for start in range(0, len(order), batch_size):
                index = order[start : start + batch_size]
                noise = event_noise(seed, index, round_index)
                vectors[index] = self._solve_events(solver, steps, grid, gen_features, gen_n, gen_globals, index, noise)
            attempts[pending] = round_index

            bad = invalid_draws(ft.invert_event_vector(vectors[pending], self.table), self.card.max_particles)
            pending = pending[bad]
            if len(pending) == 0:
                break
            report.redraws += len(pending)
            if round_index == max_rounds:
                break

        draw = ft.invert_event_vector(vectors, self.table)
        if len(pending):
            # NOTE: reached only by a model that keeps producing invalid events; the
            # forced values keep every event, and the report counts them.
            log.warning("%d events still invalid after %d redraws; forcing them into range", len(pending), max_rounds)
            report.details["forced_event_draws"] = int(len(pending))
            self._force_valid(draw, pending, vectors)
        report.details["max_event_attempts"] = int(attempts.max(initial=0)) + 1
        return draw

    def _force_valid(self, draw: ft.EventDraw, pending: np.ndarray, vectors: np.ndarray) -> None:
        limit = self.card.max_particles
        for i in pending:
            counts = draw.n_per_class[i].astype(np.float64)
            if counts.sum() > limit:
                counts = np.floor(counts * limit / counts.sum())
            if counts.sum() < 1:
                counts[int(np.argmax(vectors[i, : ft.N_CLASSES]))] = 1
            draw.n_per_class[i] = counts.astype(np.int64)
            if not (np.isfinite(draw.ht[i]) and draw.ht[i] > 0):
                draw.ht[i] = self.table["ht"].mean if self.table["ht"].mean > 0 else 1.0
            for values in (draw.met_x, draw.met_y):
                if not np.isfinite(values[i]):
                    values[i] = 0.0

    def _particle_stage(self, solver, steps, grid, seed, batch_size, gen_features, gen_n, gen_globals, draw, progress):
        tf = self.tf
        n = draw.n
        event_vector = ft.pfc_event_vector(draw.n_per_class.astype(np.float64), draw.ht, draw.met_x, draw.met_y, self.table)
        particle_globals = np.concatenate([gen_globals, event_vector], axis=1).astype(np.float32)
        classes = [np.repeat(np.arange(ft.N_CLASSES), counts) for counts in draw.n_per_class]
        kinematics: list[np.ndarray | None] = [None] * len(n)

        order = np.argsort(n, kind="stable")
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            length = int(n[index].max())
            noise = np.zeros((len(index), length, ft.F_KIN), dtype=np.float32)
            onehot = np.zeros((len(index), length, ft.N_CLASSES), dtype=np.float32)
            for row, i in enumerate(index):
                noise[row, : n[i]] = particle_noise(seed, i, n[i])
                onehot[row, : n[i]] = dt.one_hot(classes[i])
            pfc_mask = tf.constant(dt.mask_of(n[index], length))
            pfc_class = tf.constant(onehot)
            gen, gen_mask = self._gen_batch(gen_features, gen_n, index)
            globals_ = tf.constant(particle_globals[index])

            def velocity(x, t):
                return self._particle_velocity(x, tf.constant(t, tf.float32), pfc_class, pfc_mask, gen, gen_mask, globals_)

            result = solver.sample(velocity, tf.constant(noise), PATH, steps, time_grid=grid).numpy()
            for row, i in enumerate(index):
                kinematics[i] = result[row, : n[i]]
            progress.update(len(index))
        return kinematics, classes

    def _assemble(self, draw: ft.EventDraw, kinematics, classes) -> ak.Array:
        columns: dict[str, list[np.ndarray]] = {key: [] for key in ("pt", "eta", "phi", "vx", "vy", "vz")}
        abs_eta_max = self.card.pfc_selection.abs_eta_max
        for i, values in enumerate(kinematics):
            physical = ft.invert_particles(values, float(draw.ht[i]), self.table, abs_eta_max)
            for key in columns:
                columns[key].append(physical[key])
        flat = {key: np.concatenate(parts) if parts else np.zeros(0) for key, parts in columns.items()}
        flat_class = np.concatenate(classes) if classes else np.zeros(0, dtype=np.int8)
        return sampled_pfc(self.card, draw.n, **flat, cls=flat_class.astype(np.int8))

    # --- public --------------------------------------------------------------------------

    def sample(
        self,
        gen_events: ak.Array,
        *,
        solver: str | None = None,
        steps: int | None = None,
        seed: int = 0,
        batch_size: int | None = None,
    ) -> tuple[ak.Array, SamplingReport]:
        """Sample PFCs for preprocessed GEN events.

        Args:
            gen_events: events with a ``gen`` field, already passed through ``card.preprocess``.
            solver: a registered solver name; ``sampling.solver`` of the configuration
                (``dpm-solver-2``) when None.
            steps: solver steps for both stages; ``sampling.steps`` and
                ``sampling.event_steps`` of the configuration when None.
            seed: the random seed; the same seed gives the same output.
            batch_size: events per network batch; ``sampling.batch_size`` when None.

        Returns:
            ``(events, report)``: the input's GEN and event numbers with a ``pfc``
            field of real particles only, and a :class:`SamplingReport`.

        Raises:
            InvalidInputError: events without a ``gen`` field, or more GEN particles
                than the card allows.
            InvalidSettingError: an invalid step count for the solver.
        """
        tf = self.tf
        if "gen" not in ak.fields(gen_events):
            raise InvalidInputError("the events to sample have no 'gen' field; read them with parnassus.core.io.read_events")
        settings = self.config["sampling"]
        solver_name = solver or settings["solver"]
        ode_solver = load_solver(solver_name)
        particle_steps = ode_solver.check_steps(steps if steps is not None else settings["steps"])
        event_steps = ode_solver.check_steps(steps if steps is not None else settings["event_steps"])
        batch_size = int(batch_size or settings["batch_size"])
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be at least 1, not {batch_size}")
        grid = settings.get("time_grid", "uniform")  # absent from checkpoints of the first format

        report = SamplingReport(events=len(gen_events))
        report.details.update(solver=solver_name, steps=particle_steps, event_steps=event_steps, device=self.device)
        if len(gen_events) == 0:
            empty = ak.unflatten(np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64))
            empty = ev.make_particles(empty, empty, empty, empty, empty, empty, empty)
            return ev.make_events(gen_events.gen, empty, gen_events.event_number), report

        gen_features, gen_globals, gen_n = dt.gen_inputs(gen_events.gen, self.table)
        if gen_n.max(initial=0) > self.card.max_particles:
            raise InvalidInputError(
                f"an event has {int(gen_n.max())} GEN particles, more than the {self.card.max_particles} of detector "
                f"{self.card.name!r}; pass the events through card.preprocess first"
            )

        with tf.device(self.device):
            started = time.perf_counter()
            draw = self._event_stage(ode_solver, event_steps, grid, seed, batch_size, gen_features, gen_n, gen_globals, report)
            report.event_stage_seconds = time.perf_counter() - started

            started = time.perf_counter()
            progress = RateLogger(log, total=len(gen_n), what="sampling PFCs")
            kinematics, classes = self._particle_stage(
                ode_solver, particle_steps, grid, seed, batch_size, gen_features, gen_n, gen_globals, draw, progress
            )
            report.particle_stage_seconds = time.perf_counter() - started

        pfc = self._assemble(draw, kinematics, classes)
        report.details["n_per_class"] = draw.n_per_class
        report.details["ht"] = draw.ht
        log.info(
            "sampled %d events (%d event-stage redraws) in %.1f s + %.1f s with %s, %d steps",
            len(gen_n), report.redraws, report.event_stage_seconds, report.particle_stage_seconds, solver_name, particle_steps,
        )
        return ev.make_events(gen_events.gen, pfc, gen_events.event_number), report


def load(directory: Path, card: DetectorCard, *, device: str | None = None) -> DiffusionModel:
    """Load a checkpoint folder written by :func:`parnassus.backends.diffusion.training.train`.

    The EMA weights are used for sampling.

    Raises:
        CheckpointError: not a diffusion checkpoint for this detector and version,
            or missing, corrupted or mismatched weight files (the message names the file).
    """
    import_tensorflow()
    directory = Path(directory)
    info = ckpt.read_info(directory, card.name)
    table = ckpt.load_table(info, directory)
    name = device_name(device)
    tf = import_tensorflow()
    with tf.device(name):
        networks = ckpt.build_networks(info["config"], table)
        for key in ckpt.NETWORKS:
            ckpt.load_weights(directory, f"{key}_ema", networks[key])
    log.info("loaded diffusion checkpoint %s (%d epochs) on %s", directory, info["epochs_completed"], name)
    return DiffusionModel(directory, card, info, networks, table, name)

