"""Probability paths: how data and Gaussian noise are mixed at time t.

Time convention, used everywhere in parnassus: t = 0 is data and t = 1 is noise,

    x_t = alpha_t * x_data + sigma_t * eps,    eps ~ N(0, I),

and samplers integrate the probability-flow ODE dx_t/dt = v(x_t, t) from t = 1 down to t = 0.
The velocity v = dx_t/dt = alpha'_t * x_data + sigma'_t * eps is what a flow-matching network
predicts.

Two paths are built in:

- :class:`FlowMatchingPath` (``"flow-matching"``): alpha_t = 1 - t, sigma_t = t, the straight
  (rectified) path of conditional flow matching (arXiv:2210.02747, arXiv:2209.03003);
- :class:`CosinePath` (``"cosine"``): alpha_t = cos(pi t / 2), sigma_t = sin(pi t / 2), the
  variance-preserving cosine schedule of the v-prediction diffusion models (arXiv:2202.00512).

log-SNR: ``log_snr(t) = log(alpha_t^2 / sigma_t^2)``, the full logarithm of the signal-to-noise
ratio (as in arXiv:2107.00630). It is +inf at t = 0 and -inf at t = 1 for both built-in paths.
The DPM-Solver papers (arXiv:2206.00927, arXiv:2211.01095) write their formulas in the
half log-SNR lambda_t = log(alpha_t / sigma_t) = log_snr(t) / 2; parnassus.core.solvers converts
where it uses them.

Every method takes the time as a Python float. Some methods also take ``t`` as a numpy array, a
torch tensor or a TensorFlow tensor that broadcasts against ``x``, for example of shape
``(batch, 1, 1)`` against ``x`` of shape ``(batch, particles, features)``. These are ``alpha``,
``sigma``, their derivatives, and the methods that only combine them with arrays:
``interpolate``, ``velocity_target``, ``data_prediction``, ``noise_prediction`` and
``velocity_from_data_prediction``. ``log_snr`` and ``t_from_log_snr`` take Python floats or numpy
arrays.
"""

from __future__ import annotations

import abc
import math
import numbers
import sys
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from parnassus.exceptions import InvalidSettingError

__all__ = [
    "ProbabilityPath",
    "FlowMatchingPath",
    "CosinePath",
    "PATHS",
    "get_path",
]


def _elementwise(function: str, t: Any) -> Any:
    """Apply ``sin`` or ``cos`` with the library that owns ``t``, importing nothing.

    Python floats go through :mod:`math` (so a float in gives a Python float out), torch tensors
    through their own method, TensorFlow tensors through ``tf.math`` (already imported when a
    tensor exists) and everything else through numpy.
    """
    if isinstance(t, numbers.Real):
        return getattr(math, function)(t)
    library = type(t).__module__.split(".")[0]
    if library == "torch":
        return getattr(t, function)()
    if library == "tensorflow":
        return getattr(sys.modules["tensorflow"].math, function)(t)
    return getattr(np, function)(t)


def _as_time(t: Any) -> Any:
    """Return a real scalar (numpy scalars included) as a Python float and leave arrays unchanged."""
    return float(t) if isinstance(t, numbers.Real) else t


def _log_ratio(numerator, denominator):
    """Return log(numerator / denominator) for non-negative values, with log(0) = -inf and log(x / 0) = +inf."""
    if isinstance(numerator, numbers.Real) and isinstance(denominator, numbers.Real):
        if denominator == 0:
            return math.inf
        if numerator == 0:
            return -math.inf
        return math.log(numerator) - math.log(denominator)
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(numerator, dtype=float)) - np.log(np.asarray(denominator, dtype=float))


@dataclass(frozen=True)
class ProbabilityPath(abc.ABC):
    """A Gaussian probability path x_t = alpha_t * x_data + sigma_t * eps, t in [0, 1].

    Subclasses set ``name`` and implement ``alpha``, ``sigma``, ``d_alpha`` and ``d_sigma``;
    ``t_from_log_snr`` has a generic bisection that subclasses replace with the closed form.
    Requirements: alpha_0 = 1, sigma_0 = 0, alpha_1 = 0, sigma_1 = 1, and alpha_t / sigma_t
    strictly decreasing, so that the log-SNR is invertible and the 2x2 system of
    :meth:`data_prediction` is never singular.
    """

    name: ClassVar[str] = ""

    @abc.abstractmethod
    def alpha(self, t):
        """Return the data coefficient alpha_t."""

    @abc.abstractmethod
    def sigma(self, t):
        """Return the noise coefficient sigma_t."""

    @abc.abstractmethod
    def d_alpha(self, t):
        """Return d alpha_t / dt."""

    @abc.abstractmethod
    def d_sigma(self, t):
        """Return d sigma_t / dt."""

    # --- log-SNR ---------------------------------------------------------------------------

    def log_snr(self, t):
        """Return the log-SNR log(alpha_t^2 / sigma_t^2): +inf where sigma_t = 0, -inf where alpha_t = 0.

        Args:
            t: time, a Python float or a numpy array.

        Returns:
            A Python float for a float ``t``, else a numpy array.
        """
        return 2.0 * _log_ratio(self.alpha(t), self.sigma(t))

    def t_from_log_snr(self, log_snr):
        """Return the time t at which ``log_snr(t)`` equals ``log_snr`` (the inverse of :meth:`log_snr`).

        This generic version bisects in t to float precision; the built-in paths override it
        with their closed form.

        Args:
            log_snr: log(alpha^2 / sigma^2), a Python float (+-inf allowed) or a numpy array.

        Returns:
            t in [0, 1], a Python float for a float input, else a numpy array.
        """
        if not isinstance(log_snr, numbers.Real):
            return np.vectorize(self.t_from_log_snr, otypes=[float])(log_snr)
        if math.isnan(log_snr):
            raise InvalidSettingError(f"{self.name} path: log-SNR is NaN, expected a number or +-inf")
        low, high = 0.0, 1.0  # log_snr(low) >= target >= log_snr(high)
        # Halving [0, 1] reaches the smallest normal float after ~1100 steps; it stops earlier at adjacent floats.
        for _ in range(1100):
            middle = 0.5 * (low + high)
            if middle in (low, high):
                break
            if self.log_snr(middle) > log_snr:
                low = middle
            else:
                high = middle
        if math.isinf(log_snr):
            return 0.0 if log_snr > 0 else 1.0
        return 0.5 * (low + high)

    # --- mixing and targets ----------------------------------------------------------------

    def interpolate(self, x_data, noise, t):
        """Return x_t = alpha_t * x_data + sigma_t * noise.

        Args:
            x_data: data, any array of shape ``(batch, particles, features)`` or similar.
            noise: Gaussian noise of the same shape.
            t: a Python float, or an array that broadcasts against ``x_data``.
        """
        return self.alpha(t) * x_data + self.sigma(t) * noise

    def velocity_target(self, x_data, noise, t):
        """Return the conditional velocity dx_t/dt = alpha'_t * x_data + sigma'_t * noise (the flow-matching target)."""
        return self.d_alpha(t) * x_data + self.d_sigma(t) * noise

    def prediction_coefficients(self, t):
        """Return the coefficients that turn (x_t, v) into the data and noise predictions.

        Solving x = alpha x_data + sigma eps and v = alpha' x_data + sigma' eps with the
        determinant D = alpha sigma' - sigma alpha' gives

            x_data = (sigma' x - sigma v) / D,    eps = (alpha v - alpha' x) / D.

        Returns:
            ``(data_x, data_v, noise_x, noise_v)`` with x_data = data_x x + data_v v and
            eps = noise_x x + noise_v v.
        """
        alpha, sigma = self.alpha(t), self.sigma(t)
        d_alpha, d_sigma = self.d_alpha(t), self.d_sigma(t)
        determinant = alpha * d_sigma - sigma * d_alpha
        return (d_sigma / determinant, -sigma / determinant, -d_alpha / determinant, alpha / determinant)

    def data_prediction(self, x, v, t):
        """Return the data prediction x_data = (sigma'_t x - sigma_t v) / (alpha_t sigma'_t - sigma_t alpha'_t).

        Exact for the (x_t, v) pair of one data point and one noise draw, and the posterior
        mean E[x_data | x_t] when v is the probability-flow velocity.

        Args:
            x: the state x_t, shape ``(batch, particles, features)`` or any shape.
            v: the velocity dx_t/dt at (x, t), same shape and array type.
            t: a Python float, or an array that broadcasts against ``x``.

        Returns:
            An array of the type and shape of ``x``.
        """
        data_x, data_v, _, _ = self.prediction_coefficients(t)
        return data_x * x + data_v * v

    def noise_prediction(self, x, v, t):
        """Return the noise prediction eps = (alpha_t v - alpha'_t x) / (alpha_t sigma'_t - sigma_t alpha'_t).

        Args and Returns as for :meth:`data_prediction`.
        """
        _, _, noise_x, noise_v = self.prediction_coefficients(t)
        return noise_x * x + noise_v * v

    def velocity_from_data_prediction(self, x, x_data, t):
        """Return the velocity implied by a data prediction: v = (sigma'/sigma) x + (alpha' - sigma' alpha / sigma) x_data.

        This is the inverse of :meth:`data_prediction`; it is undefined where sigma_t = 0 (t = 0).

        Args:
            x: the state x_t, any shape.
            x_data: the data prediction at (x, t), same shape and array type.
            t: a Python float with sigma_t > 0, or an array that broadcasts against ``x``.
        """
        alpha, sigma = self.alpha(t), self.sigma(t)
        d_alpha, d_sigma = self.d_alpha(t), self.d_sigma(t)
        return (d_sigma / sigma) * x + (d_alpha - d_sigma * alpha / sigma) * x_data

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class FlowMatchingPath(ProbabilityPath):
    """The straight path alpha_t = 1 - t, sigma_t = t (conditional flow matching, arXiv:2210.02747).

    Its velocity is v = noise - x_data, so x_data = x - t v and eps = x + (1 - t) v.
    log-SNR = 2 log((1 - t) / t), with inverse t = 1 / (1 + exp(log_snr / 2)).
    """

    name: ClassVar[str] = "flow-matching"

    def alpha(self, t):
        return 1.0 - _as_time(t)

    def sigma(self, t):
        return _as_time(t)

    def d_alpha(self, t):
        return -1.0 + 0.0 * _as_time(t)

    def d_sigma(self, t):
        return 1.0 + 0.0 * _as_time(t)

    def t_from_log_snr(self, log_snr):
        # t = sigmoid(-log_snr / 2), written so that exp never overflows.
        if isinstance(log_snr, numbers.Real):
            half = 0.5 * log_snr
            if half >= 0:
                return math.exp(-half) / (1.0 + math.exp(-half))
            return 1.0 / (1.0 + math.exp(half))
        half = 0.5 * np.asarray(log_snr, dtype=float)
        decay = np.exp(-np.abs(half))
        return np.where(half >= 0, decay / (1.0 + decay), 1.0 / (1.0 + decay))


@dataclass(frozen=True)
class CosinePath(ProbabilityPath):
    """The variance-preserving path alpha_t = cos(pi t / 2), sigma_t = sin(pi t / 2) (arXiv:2202.00512).

    alpha_t^2 + sigma_t^2 = 1, alpha'_t = -(pi/2) sigma_t and sigma'_t = (pi/2) alpha_t, so the
    determinant of :meth:`data_prediction` is pi/2 and

        x_data = alpha_t x - (2/pi) sigma_t dx/dt,    eps = sigma_t x + (2/pi) alpha_t dx/dt.

    A v-prediction network (Salimans and Ho, arXiv:2202.00512) outputs
    v_pred = alpha_t eps - sigma_t x_data = (2/pi) dx_t/dt; :meth:`velocity_from_v_prediction` and
    :meth:`v_prediction_from_velocity` convert. log-SNR = 2 log(cot(pi t / 2)), with inverse
    t = (2/pi) atan(exp(-log_snr / 2)).

    alpha_t is evaluated as sin(pi (1 - t) / 2), equal to cos(pi t / 2) but exactly 0 in floating
    point at t = 1, so that log_snr(1) is -inf like the exact value.
    """

    name: ClassVar[str] = "cosine"

    def alpha(self, t):
        return _elementwise("sin", (0.5 * math.pi) * (1.0 - t))

    def sigma(self, t):
        return _elementwise("sin", (0.5 * math.pi) * t)

    def d_alpha(self, t):
        return -(0.5 * math.pi) * self.sigma(t)

    def d_sigma(self, t):
        return (0.5 * math.pi) * self.alpha(t)

    def t_from_log_snr(self, log_snr):
        # t = (2/pi) atan(exp(-log_snr / 2)); for log_snr < 0 use atan(y) = pi/2 - atan(1/y) so exp never overflows.
        if isinstance(log_snr, numbers.Real):
            half = 0.5 * log_snr
            if half >= 0:
                return (2.0 / math.pi) * math.atan(math.exp(-half))
            return 1.0 - (2.0 / math.pi) * math.atan(math.exp(half))
        half = 0.5 * np.asarray(log_snr, dtype=float)
        small = (2.0 / math.pi) * np.arctan(np.exp(-np.abs(half)))
        return np.where(half >= 0, small, 1.0 - small)

    @staticmethod
    def velocity_from_v_prediction(v_prediction):
        """Return dx_t/dt = (pi/2) v_pred for a v-prediction network output v_pred = alpha eps - sigma x_data."""
        return (0.5 * math.pi) * v_prediction

    @staticmethod
    def v_prediction_from_velocity(velocity):
        """Return the v-prediction target v_pred = alpha eps - sigma x_data = (2/pi) dx_t/dt."""
        return (2.0 / math.pi) * velocity


#: Built-in probability paths by name.
PATHS: dict[str, type[ProbabilityPath]] = {
    FlowMatchingPath.name: FlowMatchingPath,
    CosinePath.name: CosinePath,
}


def get_path(name: str | ProbabilityPath) -> ProbabilityPath:
    """Return the probability path called ``name`` (an instance is returned unchanged).

    >>> get_path("cosine").sigma(1.0)
    1.0

    Args:
        name: ``"flow-matching"`` or ``"cosine"``, or a :class:`ProbabilityPath`.

    Returns:
        A :class:`ProbabilityPath` instance.

    Raises:
        InvalidSettingError: the name is not a built-in path.
    """
    if isinstance(name, ProbabilityPath):
        return name
    if name not in PATHS:
        raise InvalidSettingError(f"unknown probability path {name!r}; built-in paths: {', '.join(PATHS)}")
    return PATHS[name]()
