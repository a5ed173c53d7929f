"""Tests of plugin discovery, including a third-party package installed for the test."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from parnassus.core import plugins
from parnassus.exceptions import PluginNotFoundError

PLUGIN_PACKAGE = Path(__file__).parent / "plugin_package"

BUILT_IN = {
    "detector": {"cms2011", "cmslike"},
    "backend": {"flow-matching", "diffusion", "smearing"},
    "solver": {"euler", "midpoint", "heun", "rk4", "pndm", "dpm-solver-2", "dpm-solver++2m"},
}


def run_python(code: str, extra_path: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(extra_path), env.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("kind", sorted(BUILT_IN))
def test_built_in_plugins_registered(kind):
    assert BUILT_IN[kind] <= set(plugins.available(kind))


def test_unknown_plugin_lists_registered():
    with pytest.raises(PluginNotFoundError, match="registered backends: .*flow-matching"):
        plugins.load_backend("no-such-backend")
    with pytest.raises(ValueError, match="unknown plugin kind"):
        plugins.available("metric")


def test_list_imports_no_framework():
    code = (
        "import sys, json, io, contextlib\n"
        "from parnassus.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    code = main(['list'])\n"
        "heavy = sorted(m for m in ('torch', 'tensorflow', 'keras', 'pythia8mc', 'fastjet') if m in sys.modules)\n"
        "print(json.dumps({'code': code, 'heavy': heavy, 'out': out.getvalue()}))\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] == 0
    assert report["heavy"] == []
    for names in BUILT_IN.values():
        for name in names:
            assert name in report["out"]


@pytest.fixture(scope="module")
def installed_plugin_package(tmp_path_factory):
    """Install the toy plugin package into a private folder, as pip would for a user."""
    target = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(PLUGIN_PACKAGE)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return target


def test_third_party_plugins_in_cli_list(installed_plugin_package):
    code = "import sys\nfrom parnassus.cli import main\nsys.exit(main(['list']))\n"
    result = run_python(code, installed_plugin_package)
    assert result.returncode == 0, result.stderr
    assert "toydet" in result.stdout
    assert "Toy detector of the plugin guide" in result.stdout
    assert "ralston" in result.stdout


def test_third_party_plugins_through_api(installed_plugin_package):
    code = (
        "import json, numpy as np\n"
        "from parnassus.core import plugins\n"
        "from parnassus.core.paths import FlowMatchingPath\n"
        "card = plugins.load_detector('toydet')\n"
        "solver = plugins.load_solver('ralston')\n"
        "x = solver.sample(lambda x, t: -x, np.ones(3), FlowMatchingPath(), steps=20)\n"
        "print(json.dumps({'max': card.max_particles, 'pt_min': card.pfc_selection.pt_min,\n"
        "                  'x': float(x[0]), 'hooks': plugins.plugin_manager().list_name_plugin()[0][0]}))\n"
    )
    result = run_python(code, installed_plugin_package)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["max"] == 200
    assert report["pt_min"] == 2.0
    # dx/dt = -x integrated from t = 1 down to t = 0 multiplies x by e.
    # Ralston's global error at 20 steps is 4e-4 relative (order 2), Euler's would be 3e-2.
    assert report["x"] == pytest.approx(np.e, rel=1e-3)
    assert report["hooks"] == "toydet"


def test_third_party_observable_hook(installed_plugin_package):
    code = (
        "import json, awkward as ak, numpy as np\n"
        "from parnassus.core import events as ev, plugins\n"
        "p = ev.make_particles(*[ak.Array([[1.0, 2.0]])] * 6, ak.Array([[4, 0]]))\n"
        "events = ev.make_events(p, p)\n"
        "values = plugins.extra_observables(events, plugins.load_detector('toydet'))\n"
        "print(json.dumps({k: v.tolist() for k, v in values.items()}))\n"
    )
    result = run_python(code, installed_plugin_package)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"photon_ht": [1.0]}
