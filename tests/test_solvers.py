"""Tests of the ODE solvers: convergence orders, exactness of the DPM solvers, NFE, grids and the plugin contract.

Reference problem: the probability-flow ODE of a Gaussian data distribution N(MU, STD^2) under a
path (alpha_t, sigma_t). The marginal at time t is N(alpha_t MU, alpha_t^2 STD^2 + sigma_t^2), the
posterior means are

    E[x_data | x_t] = MU + alpha_t STD^2 (x_t - alpha_t MU) / V_t,   E[eps | x_t] = sigma_t (x_t - alpha_t MU) / V_t,

with V_t = alpha_t^2 STD^2 + sigma_t^2, and the velocity alpha'_t E[x_data | x_t] + sigma'_t E[eps | x_t]
is linear in x_t. Each trajectory keeps z = (x_t - alpha_t MU) / sqrt(V_t) fixed, so the exact
solution from x at t_start is x(t_end) = alpha_end MU + sqrt(V_end) z.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from parnassus.core import plugins
from parnassus.core.paths import CosinePath, FlowMatchingPath, get_path
from parnassus.core.solvers import (
    BUILTIN_SOLVERS,
    LOG_SNR_T_EPS,
    PNDM,
    DPMSolver2,
    DPMSolverPP2M,
    Euler,
    Solver,
    adams_bashforth_weights,
    time_grid,
)
from parnassus.exceptions import InvalidSettingError

MU, STD = 1.5, 0.5
START_POINTS = np.linspace(-2.5, 2.5, 11)  # x at t = 1, i.e. noise values from -2.5 to 2.5 standard deviations
SOLVER_NAMES = tuple(BUILTIN_SOLVERS)


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tf():
    # Importing TensorFlow takes seconds: once per module.
    return pytest.importorskip("tensorflow")


@pytest.fixture(params=["numpy", "torch", "tensorflow"])
def library(request):
    if request.param == "numpy":
        return np
    if request.param == "torch":
        return request.getfixturevalue("torch")
    return request.getfixturevalue("tf")


def convert(library, array):
    """Return a numpy array as an array of ``library`` (the numpy, torch or tensorflow module), same dtype."""
    if library is np:
        return array
    if library.__name__ == "torch":
        return library.from_numpy(array.copy())
    return library.constant(array)


def gaussian_velocity(path):
    """Return the probability-flow velocity of N(MU, STD^2) data under ``path`` (see the module docstring)."""

    def velocity(x, t):
        alpha, sigma = path.alpha(t), path.sigma(t)
        variance = alpha * alpha * STD * STD + sigma * sigma
        slope = (path.d_alpha(t) * alpha * STD * STD + path.d_sigma(t) * sigma) / variance
        return slope * (x - alpha * MU) + path.d_alpha(t) * MU

    return velocity


def gaussian_solution(path, x_start, t_start, t_end):
    """Return the exact solution at t_end of the Gaussian probability-flow ODE started at (x_start, t_start)."""
    alpha_start, sigma_start = path.alpha(t_start), path.sigma(t_start)
    z = (x_start - alpha_start * MU) / math.sqrt(alpha_start**2 * STD**2 + sigma_start**2)
    alpha_end, sigma_end = path.alpha(t_end), path.sigma(t_end)
    return alpha_end * MU + math.sqrt(alpha_end**2 * STD**2 + sigma_end**2) * z


def point_mass_velocity(path, data):
    """Return the velocity whose data prediction is the constant ``data`` everywhere (point-mass data per element).

    eps(x, t) = (x - alpha_t data) / sigma_t, so v = alpha'_t data + sigma'_t eps; infinite at t = 0.
    """

    def velocity(x, t):
        alpha, sigma = path.alpha(t), path.sigma(t)
        return path.d_alpha(t) * data + (path.d_sigma(t) / sigma) * (x - alpha * data)

    return velocity


def max_error(library, solver, path, steps, grid, t_start, t_end):
    x_start = convert(library, START_POINTS.copy())
    result = solver.sample(gaussian_velocity(path), x_start, path, steps, time_grid=grid, t_start=t_start, t_end=t_end)
    return float(np.max(np.abs(np.asarray(result) - gaussian_solution(path, START_POINTS, t_start, t_end))))


def observed_order(library, solver, path, steps, grid="uniform", t_start=1.0, t_end=0.0):
    """Return log2(error(steps) / error(2 steps)), the measured convergence order."""
    coarse = max_error(library, solver, path, steps, grid, t_start, t_end)
    fine = max_error(library, solver, path, 2 * steps, grid, t_start, t_end)
    return math.log2(coarse / fine)


# --- convergence orders ------------------------------------------------------------------------

# (solver, expected order, tolerance, coarse step count). Measured on the cosine path, uniform grid,
# t from 1 to 0, float64, 32 -> 64 steps: euler 0.98, midpoint 2.03, heun 1.98, rk4 4.03, pndm 3.97.
CLASSIC_ORDERS = [
    ("euler", 1.0, 0.15, 32),
    ("midpoint", 2.0, 0.2, 32),
    ("heun", 2.0, 0.2, 32),
    ("rk4", 4.0, 0.3, 32),
]


@pytest.mark.parametrize(("name", "order", "tolerance", "steps"), CLASSIC_ORDERS)
def test_runge_kutta_convergence_order(name, order, tolerance, steps, library):
    measured = observed_order(library, BUILTIN_SOLVERS[name](), CosinePath(), steps)
    assert abs(measured - order) < tolerance, f"{name}: observed order {measured:.3f}, expected {order}"


def test_pndm_convergence_order(library):
    # Three RK4 steps plus four-step Adams-Bashforth is fourth order, but the two error terms have
    # different constants and the RK4 share shrinks as steps grow, so the measured ratio approaches
    # 4 from below (3.48 at 16 -> 32 steps, 3.97 at 32 -> 64 on this problem). Require at least 3.5.
    measured = observed_order(library, PNDM(), CosinePath(), 32)
    assert 3.5 <= measured <= 4.5, f"pndm: observed order {measured:.3f}"


# DPM solvers on a log-SNR grid from t = 1 to t = 0 (float64). Measured orders at steps -> 2 steps:
# dpm-solver-2 2.05 (32 -> 64, both paths), dpm-solver++2m 1.99 / 2.00 (64 -> 128, FM / cosine).
# On a uniform-t grid ending at t = 0 the last steps are O(1) long in log-SNR and the error goes
# like log(steps) / steps^2 instead (about 1.8 at 64 -> 128), which is why the grid here is log-SNR.
@pytest.mark.parametrize("path_name", ["flow-matching", "cosine"])
@pytest.mark.parametrize(("name", "steps"), [("dpm-solver-2", 32), ("dpm-solver++2m", 64)])
def test_dpm_convergence_order(name, steps, path_name, library):
    measured = observed_order(library, BUILTIN_SOLVERS[name](), get_path(path_name), steps, grid="logsnr")
    assert abs(measured - 2.0) < 0.2, f"{name} on {path_name}: observed order {measured:.3f}"


def test_dpm_solver_2_order_on_uniform_grid():
    # Away from t = 0 the uniform grid gives clean second order (1.98 measured at 32 -> 64 steps).
    measured = observed_order(np, DPMSolver2(), CosinePath(), 32, t_end=0.02)
    assert abs(measured - 2.0) < 0.2


@pytest.mark.parametrize("name", SOLVER_NAMES)
def test_solvers_converge_to_gaussian_solution(name):
    # Every solver on both paths and both grids lands within a loose bound of the exact solution at 64 steps.
    solver = BUILTIN_SOLVERS[name]()
    for path_name in ("flow-matching", "cosine"):
        for grid in ("uniform", "logsnr"):
            error = max_error(np, solver, get_path(path_name), 64, grid, 1.0, 0.0)
            assert error < 0.1, f"{name}, {path_name}, {grid}: max error {error}"


# --- exactness of the DPM solvers ---------------------------------------------------------------
#
# Both DPM solvers are exponential integrators whose every update is a DDIM jump
# x_t = alpha_t D + sigma_t E built from a data prediction D and noise prediction E consistent
# with the current state. Along an exact trajectory with a constant data prediction c, the noise
# prediction is constant too (x_t = alpha_t c + sigma_t eps for a fixed eps), and the DDIM jump is
# the exact solution. The second-order corrections vanish because they are differences of equal
# predictions. So with point-mass data both solvers are exact for any number of steps and any grid.


@pytest.mark.parametrize("solver_class", [DPMSolver2, DPMSolverPP2M])
@pytest.mark.parametrize("path_name", ["flow-matching", "cosine"])
def test_dpm_exact_for_point_mass(solver_class, path_name, library):
    path = get_path(path_name)
    rng = np.random.default_rng(3)
    data_np = rng.normal(1.0, 2.0, size=(2, 7, 3))
    noise_np = rng.normal(size=(2, 7, 3))
    data, noise = convert(library, data_np), convert(library, noise_np)

    for grid in ("uniform", "logsnr"):
        for steps in (1, 2, 3, 10):
            result = solver_class().sample(point_mass_velocity(path, data), noise, path, steps, time_grid=grid)
            np.testing.assert_allclose(np.asarray(result), data_np, rtol=0, atol=1e-12, err_msg=f"{grid}, {steps} steps")

    # Inside the interval: the exact state at t_end is alpha_end data + sigma_end noise.
    x_start = path.interpolate(data, noise, 0.8)
    result = solver_class().sample(point_mass_velocity(path, data), x_start, path, 5, time_grid="logsnr", t_start=0.8, t_end=0.15)
    np.testing.assert_allclose(np.asarray(result), np.asarray(path.interpolate(data_np, noise_np, 0.15)), rtol=0, atol=1e-12)


def test_runge_kutta_not_exact_for_point_mass_on_cosine():
    # The cosine trajectories alpha_t c + sigma_t eps are curved, so the exactness above is special to the DPM solvers.
    path = CosinePath()
    data, noise = np.full(4, 2.0), np.linspace(-1.0, 1.0, 4)
    for name in ("euler", "heun", "rk4", "pndm"):
        result = BUILTIN_SOLVERS[name]().sample(point_mass_velocity(path, data), noise, path, 8, t_end=0.05)
        assert np.max(np.abs(result - path.interpolate(data, noise, 0.05))) > 1e-7, name


@pytest.mark.parametrize("name", SOLVER_NAMES)
def test_all_exact_on_straight_flow_matching_paths(name):
    # With flow matching and point-mass data each trajectory is a straight line with constant
    # velocity, which every consistent solver integrates exactly.
    path = FlowMatchingPath()
    data, noise = np.linspace(-3.0, 3.0, 9), np.linspace(1.0, -1.0, 9)
    result = BUILTIN_SOLVERS[name]().sample(point_mass_velocity(path, data), noise, path, 6, time_grid="logsnr", t_end=0.1)
    np.testing.assert_allclose(result, path.interpolate(data, noise, 0.1), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", SOLVER_NAMES)
def test_evaluation_times_inside_interval(name):
    # Only heun and rk4 evaluate the velocity at t_end itself; the documentation table states this.
    path = CosinePath()
    times = []

    def velocity(x, t):
        times.append(t)
        return gaussian_velocity(path)(x, t)

    for grid in ("uniform", "logsnr"):
        times.clear()
        BUILTIN_SOLVERS[name]().sample(velocity, START_POINTS, path, 7, time_grid=grid, t_start=0.9, t_end=0.1)
        assert max(times) == 0.9
        if name in ("heun", "rk4"):
            assert min(times) == 0.1
        else:
            assert min(times) > 0.1


# --- NFE, callbacks, dtypes ------------------------------------------------------------------------


@pytest.mark.parametrize("name", SOLVER_NAMES)
def test_nfe_matches_velocity_calls(name):
    solver = BUILTIN_SOLVERS[name]()
    path = CosinePath()
    calls = []

    def velocity(x, t):
        calls.append(t)
        assert isinstance(t, float)
        assert 0.0 <= t <= 1.0
        return gaussian_velocity(path)(x, t)

    for steps in (4, 5, 9):
        for grid in ("uniform", "logsnr"):
            calls.clear()
            solver.sample(velocity, START_POINTS, path, steps, time_grid=grid)
            assert len(calls) == solver.nfe(steps), f"{name}, {steps} steps, {grid}"


def test_nfe_formulas():
    assert Euler().nfe(10) == 10
    assert BUILTIN_SOLVERS["midpoint"]().nfe(10) == 20
    assert BUILTIN_SOLVERS["heun"]().nfe(10) == 20
    assert BUILTIN_SOLVERS["rk4"]().nfe(10) == 40
    assert PNDM().nfe(25) == 4 * 3 + 22
    assert DPMSolver2().nfe(64) == 128
    assert DPMSolverPP2M().nfe(10) == 10


@pytest.mark.parametrize("name", SOLVER_NAMES)
def test_callback_sees_every_step(name):
    seen = []
    result = BUILTIN_SOLVERS[name]().sample(
        gaussian_velocity(CosinePath()), START_POINTS, "cosine", 6, callback=lambda step, t, x: seen.append((step, t, x))
    )
    assert [step for step, _, _ in seen] == [1, 2, 3, 4, 5, 6]
    assert [t for _, t, _ in seen] == time_grid("cosine", 6)[1:]
    np.testing.assert_array_equal(seen[-1][2], result)


@pytest.mark.parametrize("name", SOLVER_NAMES)
def test_float32_numpy_stays_float32(name):
    x = START_POINTS.astype(np.float32)
    result = BUILTIN_SOLVERS[name]().sample(gaussian_velocity(CosinePath()), x, "cosine", 8)
    assert result.dtype == np.float32
    assert result.shape == x.shape


# --- validation -------------------------------------------------------------------------------------


@pytest.mark.parametrize("steps", [0, -3, 2.5, True, "8", None])
def test_invalid_steps_rejected(steps):
    with pytest.raises(InvalidSettingError, match="euler: steps must be a positive integer"):
        Euler().sample(gaussian_velocity(CosinePath()), START_POINTS, "cosine", steps)


def test_numpy_integer_steps_accepted():
    assert Euler().nfe(np.int64(5)) == 5


def test_pndm_needs_four_steps():
    with pytest.raises(InvalidSettingError, match=r"pndm: steps must be at least 4, got 3; .*use rk4 for fewer steps"):
        PNDM().sample(gaussian_velocity(CosinePath()), START_POINTS, "cosine", 3)
    with pytest.raises(InvalidSettingError, match="at least 4"):
        PNDM().nfe(2)


def test_invalid_interval_and_grid_rejected():
    velocity = gaussian_velocity(CosinePath())
    with pytest.raises(InvalidSettingError, match="expected 0 <= t_end < t_start <= 1"):
        Euler().sample(velocity, START_POINTS, "cosine", 4, t_start=0.2, t_end=0.5)
    with pytest.raises(InvalidSettingError, match="expected 0 <= t_end < t_start <= 1"):
        Euler().sample(velocity, START_POINTS, "cosine", 4, t_start=1.5)
    with pytest.raises(InvalidSettingError, match="unknown time grid 'karras'; expected one of uniform, logsnr"):
        Euler().sample(velocity, START_POINTS, "cosine", 4, time_grid="karras")
    with pytest.raises(InvalidSettingError, match="unknown probability path"):
        Euler().sample(velocity, START_POINTS, "vp", 4)
    with pytest.raises(InvalidSettingError, match="clipped log-SNR range is empty"):
        time_grid("cosine", 4, "logsnr", t_start=1.0, t_end=0.9995)
    with pytest.raises(InvalidSettingError, match="eps must lie in"):
        time_grid("cosine", 4, "logsnr", eps=0.7)


# --- time grids and multistep weights ---------------------------------------------------------------


def test_uniform_grid():
    assert time_grid("flow-matching", 4) == [1.0, 0.75, 0.5, 0.25, 0.0]
    grid = time_grid("cosine", 7, t_start=0.9, t_end=0.2)
    assert grid[0] == 0.9
    assert grid[-1] == 0.2
    np.testing.assert_allclose(np.diff(grid), -0.1, atol=1e-15)


@pytest.mark.parametrize("path_name", ["flow-matching", "cosine"])
def test_log_snr_grid(path_name):
    path = get_path(path_name)
    grid = time_grid(path, 10, "logsnr")
    assert len(grid) == 11
    assert grid[0] == 1.0
    assert grid[-1] == 0.0
    assert all(later < earlier for earlier, later in zip(grid, grid[1:]))

    # Interior points are uniform in log-SNR between the clipped ends.
    low, high = path.log_snr(1.0 - LOG_SNR_T_EPS), path.log_snr(LOG_SNR_T_EPS)
    expected = low + (high - low) * np.arange(1, 10) / 10
    np.testing.assert_allclose([path.log_snr(t) for t in grid[1:-1]], expected, rtol=1e-10, atol=1e-10)

    # Inside [eps, 1 - eps] the whole grid, ends included, is uniform in log-SNR.
    inner = time_grid(path, 6, "logsnr", t_start=0.9, t_end=0.05)
    assert inner[0] == 0.9
    assert inner[-1] == 0.05
    np.testing.assert_allclose(np.diff([path.log_snr(t) for t in inner]), (path.log_snr(0.05) - path.log_snr(0.9)) / 6, rtol=1e-10)


def test_adams_bashforth_weights_classic_and_exact():
    h = -0.05
    weights = adams_bashforth_weights([0.5 - 3 * h, 0.5 - 2 * h, 0.5 - h, 0.5], 0.5, 0.5 + h)
    np.testing.assert_allclose(weights, np.array([-9.0, 37.0, -59.0, 55.0]) * h / 24.0, rtol=1e-12)

    # On an irregular grid the rule integrates any cubic in t exactly.
    nodes, t_next = [0.93, 0.81, 0.62, 0.5], 0.37
    cubic = np.polynomial.Polynomial([0.3, -1.2, 2.0, 5.0])
    approximation = sum(w * cubic(node) for w, node in zip(adams_bashforth_weights(nodes, 0.5, t_next), nodes))
    exact = cubic.integ()(t_next) - cubic.integ()(0.5)
    assert approximation == pytest.approx(exact, rel=1e-12)


# --- plugin contract ---------------------------------------------------------------------------------


def test_registered_solvers_are_the_builtins():
    registered = plugins.available("solver")
    assert set(SOLVER_NAMES) <= set(registered)
    for name in SOLVER_NAMES:
        solver = plugins.load_solver(name)
        assert type(solver) is BUILTIN_SOLVERS[name]
    assert isinstance(plugins.load_solver("rk4"), Solver)


def check_solver_contract(solver, name, library, dtype_of):
    assert isinstance(solver, Solver)
    assert solver.name == name
    assert solver.description
    assert "\n" not in solver.description
    assert isinstance(solver.order, int)
    assert solver.order >= 1

    path = CosinePath()
    rng = np.random.default_rng(11)
    x_np = rng.normal(size=(3, 5, 2)).astype(np.float32)  # (batch, particles, features)
    x = convert(library, x_np)
    calls = []

    def velocity(state, t):
        calls.append(t)
        assert type(state) is type(x)
        assert isinstance(t, float)
        return gaussian_velocity(path)(state, t)

    steps = max(solver.min_steps, 16)
    result = solver.sample(velocity, x, path, steps)
    assert type(result) is type(x)
    assert dtype_of(result) == dtype_of(x)
    assert tuple(result.shape) == x_np.shape
    assert len(calls) == solver.nfe(steps)

    # Same arithmetic as on numpy float32, and close to the exact solution.
    reference = solver.sample(gaussian_velocity(path), x_np, path, steps)
    np.testing.assert_allclose(np.asarray(result), reference, rtol=1e-5, atol=1e-5)
    assert np.max(np.abs(np.asarray(result) - gaussian_solution(path, x_np.astype(float), 1.0, 0.0))) < 0.15


def test_registered_solvers_contract_torch(torch):
    for name in plugins.available("solver"):
        check_solver_contract(plugins.load_solver(name), name, torch, lambda tensor: tensor.dtype)


def test_registered_solvers_contract_tensorflow(tf):
    for name in plugins.available("solver"):
        check_solver_contract(plugins.load_solver(name), name, tf, lambda tensor: tensor.dtype)
