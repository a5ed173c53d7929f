"""Tests of the probability paths: coefficients, derivatives, log-SNR and the 2x2 prediction solve."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from parnassus.core.paths import PATHS, CosinePath, FlowMatchingPath, ProbabilityPath, get_path
from parnassus.exceptions import InvalidSettingError

PATH_NAMES = tuple(PATHS)
TIMES = [0.0, 1e-6, 0.01, 0.1, 0.25, 0.5, 0.73, 0.9, 0.99, 1.0 - 1e-6, 1.0]
INTERIOR_TIMES = TIMES[1:-1]


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tf():
    # Importing TensorFlow takes seconds: once per module.
    return pytest.importorskip("tensorflow")


def convert(library, array):
    """Return a float64 numpy array as an array of ``library`` (numpy, torch or tensorflow module)."""
    if library is np:
        return array
    if library.__name__ == "torch":
        return library.from_numpy(array.copy())
    return library.constant(array)


@pytest.fixture(params=["numpy", "torch", "tensorflow"])
def library(request):
    if request.param == "numpy":
        return np
    if request.param == "torch":
        return request.getfixturevalue("torch")
    return request.getfixturevalue("tf")


@dataclass(frozen=True)
class QuadraticPath(ProbabilityPath):
    """alpha = 1 - t^2, sigma = t: a path without a closed-form log-SNR inverse, to test the generic bisection."""

    name: ClassVar[str] = "quadratic"

    def alpha(self, t):
        return 1.0 - t * t

    def sigma(self, t):
        return t

    def d_alpha(self, t):
        return -2.0 * t

    def d_sigma(self, t):
        return 1.0 + 0.0 * t


@pytest.mark.parametrize("name", PATH_NAMES)
def test_path_endpoints_exact(name):
    path = get_path(name)
    assert path.alpha(0.0) == 1.0
    assert path.sigma(0.0) == 0.0
    assert path.alpha(1.0) == 0.0
    assert path.sigma(1.0) == 1.0
    assert path.log_snr(0.0) == math.inf
    assert path.log_snr(1.0) == -math.inf


def test_flow_matching_coefficients():
    path = FlowMatchingPath()
    for t in TIMES:
        assert path.alpha(t) == pytest.approx(1.0 - t, abs=1e-15)
        assert path.sigma(t) == t
        assert path.d_alpha(t) == -1.0
        assert path.d_sigma(t) == 1.0


def test_cosine_variance_preserving():
    path = CosinePath()
    for t in TIMES:
        assert path.alpha(t) ** 2 + path.sigma(t) ** 2 == pytest.approx(1.0, abs=1e-15)
        assert path.alpha(t) == pytest.approx(math.cos(0.5 * math.pi * t), abs=1e-15)
    grid = np.linspace(0.0, 1.0, 101)
    np.testing.assert_allclose(path.alpha(grid) ** 2 + path.sigma(grid) ** 2, 1.0, atol=1e-15)


@pytest.mark.parametrize("name", [*PATH_NAMES, "quadratic"])
def test_derivatives_match_finite_differences(name):
    path = QuadraticPath() if name == "quadratic" else get_path(name)
    step = 1e-6
    for t in [0.05, 0.3, 0.5, 0.77, 0.95]:
        d_alpha = (path.alpha(t + step) - path.alpha(t - step)) / (2 * step)
        d_sigma = (path.sigma(t + step) - path.sigma(t - step)) / (2 * step)
        # Central differences have error ~ step^2 |f'''| + rounding ~ 1e-16 / step, about 1e-10 here.
        assert path.d_alpha(t) == pytest.approx(d_alpha, abs=1e-8)
        assert path.d_sigma(t) == pytest.approx(d_sigma, abs=1e-8)


@pytest.mark.parametrize("name", PATH_NAMES)
def test_log_snr_definition_and_monotone(name):
    path = get_path(name)
    values = [path.log_snr(t) for t in TIMES]
    for t, value in zip(INTERIOR_TIMES, values[1:-1]):
        assert value == pytest.approx(math.log(path.alpha(t) ** 2 / path.sigma(t) ** 2), rel=1e-12, abs=1e-12)
    assert all(later < earlier for earlier, later in zip(values, values[1:]))
    assert path.log_snr(0.5) == pytest.approx(0.0, abs=1e-12)  # alpha = sigma at t = 1/2 on both paths


@pytest.mark.parametrize("name", [*PATH_NAMES, "quadratic"])
def test_log_snr_inverse_round_trip(name):
    path = QuadraticPath() if name == "quadratic" else get_path(name)
    for t in INTERIOR_TIMES:
        assert path.t_from_log_snr(path.log_snr(t)) == pytest.approx(t, rel=1e-10, abs=1e-13)
    # Near t = 1, t itself carries only ~1e-16 of absolute precision, so |log-SNR| = 40 round-trips to ~1e-7.
    for log_snr in [-40.0, -3.0, 0.0, 2.5, 40.0]:
        assert path.log_snr(path.t_from_log_snr(log_snr)) == pytest.approx(log_snr, abs=1e-6)
    assert path.t_from_log_snr(math.inf) == 0.0
    assert path.t_from_log_snr(-math.inf) == 1.0


@pytest.mark.parametrize("name", PATH_NAMES)
def test_log_snr_inverse_extremes_and_arrays(name):
    path = get_path(name)
    # No overflow far outside any useful range.
    assert 0.0 <= path.t_from_log_snr(-5000.0) <= 1.0
    assert path.t_from_log_snr(-5000.0) == pytest.approx(1.0)
    assert path.t_from_log_snr(5000.0) == pytest.approx(0.0)

    log_snr = np.array([-np.inf, -50.0, -1.0, 0.0, 1.0, 50.0, np.inf])
    expected = [path.t_from_log_snr(float(value)) for value in log_snr]
    np.testing.assert_allclose(path.t_from_log_snr(log_snr), expected, rtol=1e-14, atol=0)
    # The closed form agrees with the generic bisection of the base class.
    for value in log_snr:
        assert ProbabilityPath.t_from_log_snr(path, float(value)) == pytest.approx(path.t_from_log_snr(float(value)), abs=1e-14)


def test_flow_matching_log_snr_closed_form():
    path = FlowMatchingPath()
    assert path.log_snr(0.2) == pytest.approx(2.0 * math.log(4.0), rel=1e-14)
    assert path.t_from_log_snr(-2.0 * math.log(3.0)) == pytest.approx(0.75, rel=1e-14)


def test_cosine_log_snr_closed_form():
    path = CosinePath()
    assert path.log_snr(1.0 / 3.0) == pytest.approx(2.0 * math.log(math.sqrt(3.0)), rel=1e-13)
    assert path.t_from_log_snr(-2.0 * math.log(math.sqrt(3.0))) == pytest.approx(2.0 / 3.0, rel=1e-13)


@pytest.mark.parametrize("name", [*PATH_NAMES, "quadratic"])
def test_predictions_recover_data_and_noise(name, library):
    path = QuadraticPath() if name == "quadratic" else get_path(name)
    rng = np.random.default_rng(7)
    x_data_np = rng.normal(2.0, 3.0, size=(4, 6, 3))
    noise_np = rng.normal(size=(4, 6, 3))
    x_data, noise = convert(library, x_data_np), convert(library, noise_np)

    for t in TIMES:
        x_t = path.interpolate(x_data, noise, t)
        v = path.velocity_target(x_data, noise, t)
        data_prediction = np.asarray(path.data_prediction(x_t, v, t))
        noise_prediction = np.asarray(path.noise_prediction(x_t, v, t))
        np.testing.assert_allclose(data_prediction, x_data_np, rtol=0, atol=1e-12)
        np.testing.assert_allclose(noise_prediction, noise_np, rtol=0, atol=1e-12)
        assert type(path.data_prediction(x_t, v, t)) is type(x_t)


@pytest.mark.parametrize("name", PATH_NAMES)
def test_predictions_with_per_example_times(name, library):
    path = get_path(name)
    rng = np.random.default_rng(8)
    x_data_np = rng.normal(size=(5, 4, 2))
    noise_np = rng.normal(size=(5, 4, 2))
    t_np = np.array([0.0, 0.1, 0.5, 0.9, 1.0]).reshape(5, 1, 1)
    x_data, noise, t = convert(library, x_data_np), convert(library, noise_np), convert(library, t_np)

    x_t = path.interpolate(x_data, noise, t)
    v = path.velocity_target(x_data, noise, t)
    expected_x_t = np.asarray(path.alpha(t_np)) * x_data_np + np.asarray(path.sigma(t_np)) * noise_np
    np.testing.assert_allclose(np.asarray(x_t), expected_x_t, atol=1e-14)
    np.testing.assert_allclose(np.asarray(path.data_prediction(x_t, v, t)), x_data_np, atol=1e-12)
    np.testing.assert_allclose(np.asarray(path.noise_prediction(x_t, v, t)), noise_np, atol=1e-12)


@pytest.mark.parametrize("name", PATH_NAMES)
def test_velocity_from_data_prediction_inverts(name):
    path = get_path(name)
    rng = np.random.default_rng(9)
    x_data, noise = rng.normal(size=10), rng.normal(size=10)
    for t in [0.01, 0.3, 0.8, 1.0]:
        x_t = path.interpolate(x_data, noise, t)
        v = path.velocity_target(x_data, noise, t)
        np.testing.assert_allclose(path.velocity_from_data_prediction(x_t, x_data, t), v, atol=1e-10)


def test_cosine_v_prediction_conversion():
    path = CosinePath()
    rng = np.random.default_rng(10)
    x_data, noise = rng.normal(size=8), rng.normal(size=8)
    for t in [0.0, 0.2, 0.6, 1.0]:
        v_prediction = path.alpha(t) * noise - path.sigma(t) * x_data  # Salimans and Ho's v target
        velocity = path.velocity_target(x_data, noise, t)
        np.testing.assert_allclose(path.v_prediction_from_velocity(velocity), v_prediction, atol=1e-14)
        np.testing.assert_allclose(path.velocity_from_v_prediction(v_prediction), velocity, atol=1e-14)


def test_coefficients_keep_torch_tensor_type(torch):
    t = torch.tensor([0.25, 0.5], dtype=torch.float32)
    alpha = CosinePath().alpha(t)
    assert isinstance(alpha, torch.Tensor)
    assert alpha.dtype == torch.float32
    np.testing.assert_allclose(alpha.numpy(), np.cos(0.5 * np.pi * np.array([0.25, 0.5])), rtol=1e-6)


def test_coefficients_keep_tensorflow_tensor_type(tf):
    t = tf.constant([0.25, 0.5], dtype=tf.float32)
    sigma = CosinePath().sigma(t)
    assert tf.is_tensor(sigma)
    assert sigma.dtype == tf.float32
    np.testing.assert_allclose(sigma.numpy(), np.sin(0.5 * np.pi * np.array([0.25, 0.5])), rtol=1e-6)


def test_scalar_time_gives_python_float():
    for path in (FlowMatchingPath(), CosinePath()):
        assert type(path.alpha(0.3)) is float
        assert type(path.sigma(np.float64(0.3))) is float
        assert type(path.log_snr(0.3)) is float


def test_get_path_names_and_errors():
    assert isinstance(get_path("flow-matching"), FlowMatchingPath)
    assert isinstance(get_path("cosine"), CosinePath)
    path = CosinePath()
    assert get_path(path) is path
    with pytest.raises(InvalidSettingError, match="unknown probability path 'linear'; built-in paths: flow-matching, cosine"):
        get_path("linear")


def test_bisection_rejects_nan():
    with pytest.raises(InvalidSettingError, match="NaN"):
        QuadraticPath().t_from_log_snr(math.nan)
