"""ODE solvers for the probability-flow ODE of a probability path, over any array type.

A solver integrates dx_t/dt = velocity(x_t, t) from t_start (noise, default 1) down to t_end
(data, default 0) on a grid of ``steps + 1`` times (see :func:`time_grid`). The velocity is any
callable ``velocity(x, t) -> dx/dt`` that takes an array ``x`` and a Python float ``t``. Solvers
use nothing but ``+``, ``-`` and multiplication by Python floats on the arrays, so numpy arrays,
torch tensors (any device) and TensorFlow tensors all work, and the output keeps the type, dtype,
device and shape of ``x_init``.

=================  =====  ====================  ===========================================
name               order  NFE for N steps       method
=================  =====  ====================  ===========================================
``euler``          1      N                     explicit Euler
``midpoint``       2      2 N                   explicit midpoint (RK2)
``heun``           2      2 N                   Heun's method (trapezoidal RK2)
``rk4``            4      4 N                   classic Runge-Kutta
``pndm``           4      N + 9 (N >= 4)        RK4 for 3 steps, then 4-step Adams-Bashforth
``dpm-solver-2``   2      2 N                   DPM-Solver-2, noise prediction (arXiv:2206.00927)
``dpm-solver++2m`` 2      N                     DPM-Solver++(2M), data prediction (arXiv:2211.01095)
=================  =====  ====================  ===========================================

NFE is the number of velocity evaluations (network calls). The DPM solvers are exponential
integrators in the half log-SNR lambda_t = log(alpha_t / sigma_t) = path.log_snr(t) / 2; they
turn the velocity into data and noise predictions with
:meth:`~parnassus.core.paths.ProbabilityPath.data_prediction` and
:meth:`~parnassus.core.paths.ProbabilityPath.noise_prediction`.

A solver plugin subclasses :class:`Solver`, sets ``name``, ``description``, ``order`` and
``nfe_per_step`` (or overrides :meth:`Solver.nfe`), implements :meth:`Solver.step` (one-step
methods) or :meth:`Solver.integrate` (multistep methods), and is registered in the
``parnassus.solvers`` entry-point group.
"""

from __future__ import annotations

import abc
import logging
import math
import operator
from typing import Any, Callable, ClassVar, Sequence

from parnassus.core.paths import ProbabilityPath, get_path
from parnassus.exceptions import InvalidSettingError

log = logging.getLogger(__name__)

__all__ = [
    "GRID_KINDS",
    "LOG_SNR_T_EPS",
    "check_steps",
    "time_grid",
    "adams_bashforth_weights",
    "Solver",
    "Euler",
    "Midpoint",
    "Heun",
    "RK4",
    "PNDM",
    "DPMSolver2",
    "DPMSolverPP2M",
    "BUILTIN_SOLVERS",
]

Velocity = Callable[[Any, float], Any]
Callback = Callable[[int, float, Any], None]

#: Kinds of time grid that :func:`time_grid` builds.
GRID_KINDS = ("uniform", "logsnr")

#: A log-SNR grid is uniform in log-SNR between log_snr(clip(t_start)) and log_snr(clip(t_end)),
#: with t clipped to [eps, 1 - eps], because the log-SNR is infinite at t = 0 and t = 1.
#: The value is the t0 = 1e-3 of DPM-Solver's continuous-time schedules (arXiv:2206.00927).
LOG_SNR_T_EPS = 1e-3


# --- time grids --------------------------------------------------------------------------------


def check_steps(steps: Any, minimum: int = 1, solver: str = "solver") -> int:
    """Return ``steps`` as an int, or raise :class:`InvalidSettingError` if it is not an integer >= ``minimum``."""
    if isinstance(steps, bool):
        raise InvalidSettingError(f"{solver}: steps must be a positive integer, got {steps!r}")
    try:
        steps = operator.index(steps)
    except TypeError:
        raise InvalidSettingError(f"{solver}: steps must be a positive integer, got {steps!r}") from None
    if steps < minimum:
        if minimum == 1:
            raise InvalidSettingError(f"{solver}: steps must be a positive integer, got {steps}")
        raise InvalidSettingError(f"{solver}: steps must be at least {minimum}, got {steps}")
    return steps


def _check_interval(t_start: Any, t_end: Any) -> tuple[float, float]:
    t_start, t_end = float(t_start), float(t_end)
    if not (0.0 <= t_end < t_start <= 1.0):
        raise InvalidSettingError(
            f"solvers integrate from noise to data: expected 0 <= t_end < t_start <= 1, "
            f"got t_start={t_start}, t_end={t_end}"
        )
    return t_start, t_end


def time_grid(
    path: ProbabilityPath | str,
    steps: int,
    kind: str = "uniform",
    *,
    t_start: float = 1.0,
    t_end: float = 0.0,
    eps: float = LOG_SNR_T_EPS,
) -> list[float]:
    """Build the ``steps + 1`` decreasing times of a solver run, from ``t_start`` to ``t_end``.

    - ``"uniform"``: t_i = t_start + (t_end - t_start) i / steps.
    - ``"logsnr"``: uniform in log-SNR, log_snr(t_i) = L_start + (L_end - L_start) i / steps with
      L = path.log_snr(clip(t, eps, 1 - eps)), because log-SNR is -inf at t = 1 and +inf at t = 0.
      The first and last entries are then set back to ``t_start`` and ``t_end``, so the run still
      covers the whole interval: with the defaults the first step absorbs [1 - eps, 1] and the
      last step [0, eps]. Inside [eps, 1 - eps] the grid is exactly uniform in log-SNR.

    >>> time_grid("flow-matching", 4)
    [1.0, 0.75, 0.5, 0.25, 0.0]

    Args:
        path: a :class:`ProbabilityPath` or its name (only ``"logsnr"`` uses it).
        steps: number of intervals, a positive integer.
        kind: ``"uniform"`` or ``"logsnr"``.
        t_start: start time (noise end), 0 <= t_end < t_start <= 1.
        t_end: end time (data end).
        eps: the clipping distance in t of a log-SNR grid, 0 < eps < 0.5.

    Returns:
        A list of ``steps + 1`` Python floats, strictly decreasing, first ``t_start``, last ``t_end``.

    Raises:
        InvalidSettingError: invalid steps, interval, kind or eps.
    """
    steps = check_steps(steps, solver="time grid")
    t_start, t_end = _check_interval(t_start, t_end)

    if kind == "uniform":
        times = [t_start + (t_end - t_start) * i / steps for i in range(steps + 1)]
    elif kind == "logsnr":
        times = _log_snr_grid(get_path(path), steps, t_start, t_end, eps)
    else:
        raise InvalidSettingError(f"unknown time grid {kind!r}; expected one of {', '.join(GRID_KINDS)}")

    times[0], times[-1] = t_start, t_end
    return times


def _log_snr_grid(path: ProbabilityPath, steps: int, t_start: float, t_end: float, eps: float) -> list[float]:
    if not 0.0 < eps < 0.5:
        raise InvalidSettingError(f"log-SNR grid: eps must lie in (0, 0.5), got {eps}")

    def clip(t: float) -> float:
        return min(max(t, eps), 1.0 - eps)

    log_snr_start, log_snr_end = path.log_snr(clip(t_start)), path.log_snr(clip(t_end))
    if not log_snr_end > log_snr_start:
        raise InvalidSettingError(
            f"log-SNR grid: t_start={t_start} and t_end={t_end} both lie within eps={eps} of the same end "
            f"of [0, 1], so the clipped log-SNR range is empty; use the uniform grid"
        )

    times = [path.t_from_log_snr(log_snr_start + (log_snr_end - log_snr_start) * i / steps) for i in range(steps + 1)]
    return [float(t) for t in times]


# --- the solver contract -------------------------------------------------------------------------


class Solver(abc.ABC):
    """An ODE solver for dx_t/dt = velocity(x_t, t), integrated from noise (t_start) to data (t_end).

    Subclasses set the class attributes and implement :meth:`step` (one-step methods, called once
    per grid interval) or :meth:`integrate` (methods that keep a history between steps).

    Attributes:
        name: the name the solver is registered under.
        description: one line for ``parnassus list``.
        order: the global order of accuracy p (error ~ steps^-p for a smooth velocity field).
        nfe_per_step: velocity evaluations per step, used by the default :meth:`nfe`.
        min_steps: the smallest step count the method supports.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    order: ClassVar[int] = 1
    nfe_per_step: ClassVar[int] = 1
    min_steps: ClassVar[int] = 1

    def nfe(self, steps: int) -> int:
        """Return the number of velocity evaluations of a run with ``steps`` steps."""
        return self.nfe_per_step * self.check_steps(steps)

    def check_steps(self, steps: Any) -> int:
        """Return ``steps`` as an int, or raise :class:`InvalidSettingError` naming the solver and its minimum."""
        return check_steps(steps, self.min_steps, self.name or type(self).__name__)

    def sample(
        self,
        velocity: Velocity,
        x_init: Any,
        path: ProbabilityPath | str,
        steps: int,
        *,
        time_grid: str = "uniform",
        t_start: float = 1.0,
        t_end: float = 0.0,
        callback: Callback | None = None,
    ) -> Any:
        """Integrate the probability-flow ODE from ``t_start`` (noise) to ``t_end`` (data).

        Args:
            velocity: ``velocity(x, t) -> dx/dt``, with ``x`` of the shape and type of ``x_init``
                and ``t`` a Python float.
            x_init: the state at ``t_start``; at t = 1 a draw of N(0, I). Any shape, for example
                ``(batch, particles, features)``; padded particles are integrated like the others.
            path: the :class:`ProbabilityPath` of the model, or its name.
            steps: number of grid intervals (a positive integer, at least ``min_steps``).
            time_grid: ``"uniform"`` in t or ``"logsnr"`` (see :func:`time_grid`).
            t_start: start time, 0 <= t_end < t_start <= 1.
            t_end: end time.
            callback: called as ``callback(step, t, x)`` after each step, with the number of
                completed steps, the time reached and the state there.

        Returns:
            The state at ``t_end``, of the type, dtype and shape of ``x_init``.

        Raises:
            InvalidSettingError: invalid steps, time grid or interval.
        """
        steps = self.check_steps(steps)
        path = get_path(path)
        times = _build_time_grid(path, steps, time_grid, t_start=t_start, t_end=t_end)
        log.debug(
            "%s: %d steps on a %s grid from t=%g to t=%g, %d velocity evaluations",
            self.name, steps, time_grid, times[0], times[-1], self.nfe(steps),
        )
        return self.integrate(velocity, x_init, path, times, callback)

    def integrate(
        self,
        velocity: Velocity,
        x: Any,
        path: ProbabilityPath,
        times: Sequence[float],
        callback: Callback | None = None,
    ) -> Any:
        """Integrate over a given decreasing grid ``times`` (Python floats) by calling :meth:`step` per interval."""
        for index in range(len(times) - 1):
            x = self.step(velocity, x, path, times[index], times[index + 1])
            if callback is not None:
                callback(index + 1, times[index + 1], x)
        return x

    def step(self, velocity: Velocity, x: Any, path: ProbabilityPath, t: float, t_next: float) -> Any:
        """Advance x from t to t_next (t_next < t) and return the new state."""
        raise NotImplementedError(f"{type(self).__name__} must implement step() or integrate()")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# ``Solver.sample`` has an argument called ``time_grid``; this alias keeps the function reachable.
_build_time_grid = time_grid


# --- Runge-Kutta methods -------------------------------------------------------------------------


class Euler(Solver):
    """Explicit Euler: x_{n+1} = x_n + h v(x_n, t_n), with h = t_{n+1} - t_n < 0."""

    name = "euler"
    description = "explicit Euler, order 1, 1 velocity evaluation per step"
    order = 1
    nfe_per_step = 1

    def step(self, velocity, x, path, t, t_next):
        return x + (t_next - t) * velocity(x, t)


class Midpoint(Solver):
    """Explicit midpoint: k1 = v(x, t), k2 = v(x + h/2 k1, t + h/2), x_{n+1} = x + h k2."""

    name = "midpoint"
    description = "explicit midpoint Runge-Kutta, order 2, 2 velocity evaluations per step"
    order = 2
    nfe_per_step = 2

    def step(self, velocity, x, path, t, t_next):
        h = t_next - t
        k1 = velocity(x, t)
        k2 = velocity(x + (0.5 * h) * k1, t + 0.5 * h)
        return x + h * k2


class Heun(Solver):
    """Heun's method: k1 = v(x, t), k2 = v(x + h k1, t + h), x_{n+1} = x + h/2 (k1 + k2).

    It evaluates the velocity at t_end itself, so the field must be finite there.
    """

    name = "heun"
    description = "Heun's trapezoidal Runge-Kutta, order 2, 2 velocity evaluations per step"
    order = 2
    nfe_per_step = 2

    def step(self, velocity, x, path, t, t_next):
        h = t_next - t
        k1 = velocity(x, t)
        k2 = velocity(x + h * k1, t_next)
        return x + (0.5 * h) * (k1 + k2)


def _rk4_step(velocity: Velocity, x: Any, t: float, t_next: float, k1: Any) -> Any:
    """Classic RK4 step given k1 = v(x, t): x + h/6 (k1 + 2 k2 + 2 k3 + k4)."""
    h = t_next - t
    t_half = t + 0.5 * h
    k2 = velocity(x + (0.5 * h) * k1, t_half)
    k3 = velocity(x + (0.5 * h) * k2, t_half)
    k4 = velocity(x + h * k3, t_next)
    return x + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


class RK4(Solver):
    """Classic fourth-order Runge-Kutta; evaluates the velocity at t_end itself."""

    name = "rk4"
    description = "classic Runge-Kutta, order 4, 4 velocity evaluations per step"
    order = 4
    nfe_per_step = 4

    def step(self, velocity, x, path, t, t_next):
        return _rk4_step(velocity, x, t, t_next, velocity(x, t))


# --- linear multistep ------------------------------------------------------------------------------


def adams_bashforth_weights(nodes: Sequence[float], t: float, t_next: float) -> list[float]:
    """Return the Adams-Bashforth weights w_j with x(t_next) ~ x(t) + sum_j w_j v(t_j).

    w_j = integral from t to t_next of the Lagrange basis polynomial of node t_j, so the rule is
    exact for velocities that are polynomials in t of degree len(nodes) - 1, on any grid. For four
    equally spaced nodes (t - 3h', ..., t) and t_next = t + h' it gives the classic
    h' (-9, 37, -59, 55) / 24.

    >>> [round(w * 12, 12) for w in adams_bashforth_weights([3.0, 2.0, 1.0], 1.0, 0.0)]
    [-5.0, 16.0, -23.0]

    Args:
        nodes: distinct times of the stored velocities, oldest first.
        t: the current time (normally the last node).
        t_next: the time to step to.

    Returns:
        One weight per node, in the order of ``nodes``.
    """
    # Work in u = tau - t, so the nodes and the interval end are O(h) and the products stay well scaled.
    shifted = [node - t for node in nodes]
    h = t_next - t
    weights = []
    for j, node_j in enumerate(shifted):
        # Coefficients of prod_{k != j} (u - u_k) / (u_j - u_k), lowest degree first.
        polynomial = [1.0]
        for k, node_k in enumerate(shifted):
            if k == j:
                continue
            scale = 1.0 / (node_j - node_k)
            product = [0.0] * (len(polynomial) + 1)
            for power, coefficient in enumerate(polynomial):
                product[power] -= node_k * coefficient * scale
                product[power + 1] += coefficient * scale
            polynomial = product
        weights.append(sum(coefficient * h ** (power + 1) / (power + 1) for power, coefficient in enumerate(polynomial)))
    return weights


class PNDM(Solver):
    """RK4 for the first three steps, then the four-step Adams-Bashforth method on the velocity history.

    This is the pseudo linear multistep idea of PNDM (Liu et al., arXiv:2202.09778) written for
    the velocity ODE: three Runge-Kutta steps fill the history, after which every step costs one
    velocity evaluation. The Adams-Bashforth weights are integrated for the actual grid
    (:func:`adams_bashforth_weights`), so the method stays fourth order on a non-uniform
    (log-SNR) grid. On a uniform grid they are the classic (55, -59, 37, -9) / 24.
    NFE = 4 * 3 + (steps - 3) = steps + 9; at least 4 steps.
    """

    name = "pndm"
    description = "RK4 warm-up then 4-step Adams-Bashforth, order 4, steps + 9 velocity evaluations"
    order = 4
    min_steps = 4
    warmup_steps = 3

    def nfe(self, steps: int) -> int:
        steps = self.check_steps(steps)
        return 4 * self.warmup_steps + (steps - self.warmup_steps)

    def check_steps(self, steps: Any) -> int:
        try:
            return super().check_steps(steps)
        except InvalidSettingError as error:
            raise InvalidSettingError(
                f"{error}; pndm needs 3 RK4 warm-up steps plus at least one Adams-Bashforth step "
                f"(use rk4 for fewer steps)"
            ) from None

    def integrate(self, velocity, x, path, times, callback=None):
        history_times: list[float] = []
        history: list[Any] = []

        for index in range(len(times) - 1):
            t, t_next = times[index], times[index + 1]
            v = velocity(x, t)
            history_times.append(t)
            history.append(v)

            if index < self.warmup_steps:
                x = _rk4_step(velocity, x, t, t_next, v)
            else:
                history_times, history = history_times[-4:], history[-4:]
                weights = adams_bashforth_weights(history_times, t, t_next)
                for weight, stored in zip(weights, history):
                    x = x + weight * stored

            if callback is not None:
                callback(index + 1, t_next, x)
        return x


# --- DPM-Solver family ------------------------------------------------------------------------------


def _half_log_snr(path: ProbabilityPath, t: float) -> float:
    """Return lambda_t = log(alpha_t / sigma_t), the variable of the DPM-Solver papers."""
    return 0.5 * float(path.log_snr(t))


def _intermediate_half_log_snr(lam_s: float, lam_t: float) -> float:
    """Return the half log-SNR of the intermediate point of a singlestep DPM-Solver-2 step s -> t.

    Finite ends: the midpoint (r1 = 1/2 of arXiv:2206.00927). An infinite end has no midpoint, so
    the point sits one unit of lambda inside the finite end. That is the mean of the exponential
    weight in the exact solution: e^lambda on (-inf, lam_t] from pure noise, e^-lambda on
    [lam_s, inf) towards data. At that point a one-point rule integrates a prediction that is
    linear in lambda exactly.
    """
    if math.isfinite(lam_s) and math.isfinite(lam_t):
        return 0.5 * (lam_s + lam_t)
    if math.isfinite(lam_t):
        return lam_t - 1.0
    if math.isfinite(lam_s):
        return lam_s + 1.0
    return 0.0


class DPMSolver2(Solver):
    """DPM-Solver-2 (Lu et al., arXiv:2206.00927): singlestep, second order, noise prediction.

    With lambda = log(alpha / sigma), h = lambda_t - lambda_s and the intermediate point u at
    lambda_u = lambda_s + h / 2, one step s -> t is

        x_u = (alpha_u / alpha_s) x_s - sigma_u (e^{h/2} - 1) eps(x_s, s)
        x_t = (alpha_t / alpha_s) x_s - sigma_t (e^h - 1) eps(x_u, u).

    Both stages are evaluated in the equivalent DDIM form alpha_t x_data + sigma_t eps, which is
    finite at sigma_t = 0, so the last step to t_end = 0 returns the data prediction
    (x_s - sigma_s eps(x_u, u)) / alpha_s. Steps with an infinite end place u one unit of lambda
    inside the finite end (see :func:`_intermediate_half_log_snr`). The noise form is singular at
    alpha_s = 0 (the first step from t = 1), so that step uses the data-prediction twin
    x_t = alpha_t x_data(x_u, u) + (sigma_t / sigma_s) x_s of the second stage.
    The velocity is never evaluated at t_end. NFE = 2 per step.
    """

    name = "dpm-solver-2"
    description = "DPM-Solver-2 (singlestep, noise prediction, midpoint in log-SNR), order 2, 2 evaluations per step"
    order = 2
    nfe_per_step = 2

    def step(self, velocity, x, path, t, t_next):
        alpha_s, sigma_s = float(path.alpha(t)), float(path.sigma(t))
        alpha_t, sigma_t = float(path.alpha(t_next)), float(path.sigma(t_next))
        lam_u = _intermediate_half_log_snr(_half_log_snr(path, t), _half_log_snr(path, t_next))
        u = float(path.t_from_log_snr(2.0 * lam_u))
        alpha_u, sigma_u = float(path.alpha(u)), float(path.sigma(u))

        v_s = velocity(x, t)
        x_u = alpha_u * path.data_prediction(x, v_s, t) + sigma_u * path.noise_prediction(x, v_s, t)

        v_u = velocity(x_u, u)
        if alpha_s > 0.0:
            noise_u = path.noise_prediction(x_u, v_u, u)
            return (alpha_t / alpha_s) * (x - sigma_s * noise_u) + sigma_t * noise_u
        return alpha_t * path.data_prediction(x_u, v_u, u) + (sigma_t / sigma_s) * x


class DPMSolverPP2M(Solver):
    """DPM-Solver++(2M) (Lu et al., arXiv:2211.01095): multistep, second order, data prediction.

    With lambda = log(alpha / sigma), h = lambda_t - lambda_s, D_s = x_data(x_s, s), and the
    previous grid point p (h_p = lambda_s - lambda_p, r = h_p / h):

        first order:  x_t = (sigma_t / sigma_s) x_s - alpha_t (e^{-h} - 1) D_s
        second order: x_t = first order - alpha_t (e^{-h} - 1) (D_s - D_p) / (2 r).

    The first step has no history and is first order. The next step is also first order when the
    previous point had lambda = -inf (t = 1), where extrapolating in lambda has no meaning. The
    last step is first order ("lower order final" of arXiv:2211.01095); to t_end = 0 it returns
    the data prediction D_s exactly. The first-order update is evaluated as
    alpha_t D_s + (sigma_t / sigma_s)(x_s - alpha_s D_s), finite at both ends. The velocity is
    never evaluated at t_end. NFE = 1 per step.
    """

    name = "dpm-solver++2m"
    description = "DPM-Solver++(2M) (multistep, data prediction), order 2, 1 evaluation per step"
    order = 2
    nfe_per_step = 1

    def integrate(self, velocity, x, path, times, callback=None):
        steps = len(times) - 1
        previous_lam = None
        previous_data = None

        for index in range(steps):
            t, t_next = times[index], times[index + 1]
            alpha_s, sigma_s = float(path.alpha(t)), float(path.sigma(t))
            alpha_t, sigma_t = float(path.alpha(t_next)), float(path.sigma(t_next))
            lam_s, lam_t = _half_log_snr(path, t), _half_log_snr(path, t_next)

            data = path.data_prediction(x, velocity(x, t), t)
            x_next = alpha_t * data + (sigma_t / sigma_s) * (x - alpha_s * data)

            last_step = index == steps - 1
            if previous_lam is not None and math.isfinite(previous_lam) and not last_step:
                h = lam_t - lam_s
                ratio = (lam_s - previous_lam) / h
                x_next = x_next + (-0.5 * alpha_t * math.expm1(-h) / ratio) * (data - previous_data)

            previous_lam, previous_data = lam_s, data
            x = x_next
            if callback is not None:
                callback(index + 1, t_next, x)
        return x


#: The solvers this module defines, by name (the ``parnassus.solvers`` entry points register the same).
BUILTIN_SOLVERS: dict[str, type[Solver]] = {
    solver.name: solver for solver in (Euler, Midpoint, Heun, RK4, PNDM, DPMSolver2, DPMSolverPP2M)
}
