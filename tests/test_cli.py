"""Tests of the parnassus command: version, help of every subcommand, info, errors."""

import subprocess
import sys

import pytest

import parnassus
from parnassus.cli import COMMANDS, main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "parnassus.cli", *args], capture_output=True, text=True, timeout=300)


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"parnassus {parnassus.__version__}"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: parnassus {command}" in out
    assert "not available yet" not in out


def test_info_detector(capsys):
    assert main(["info", "cms2011"]) == 0
    out = capsys.readouterr().out
    assert "PFC selection: pT > 1.0 GeV, |eta| < 2.7" in out
    assert "maximum particles per event: 400" in out
    assert "15083495" in out


def test_info_solver(capsys):
    assert main(["info", "rk4"]) == 0
    out = capsys.readouterr().out
    assert "order: 4" in out


def test_info_backend(capsys):
    assert main(["info", "flow-matching"]) == 0
    assert "framework: torch" in capsys.readouterr().out


def test_info_unknown_name(caplog):
    assert main(["info", "no-such-thing"]) == 1
    assert "no plugin named 'no-such-thing'" in caplog.text


def test_run_cms2011_without_weights(tmp_path, caplog):
    code = main(["run", "--detector", "cms2011", "--backend", "flow-matching", "-o", str(tmp_path / "out.root")])
    assert code == 1
    assert "ships no weights" in caplog.text
    assert "15083495" in caplog.text
    assert not list(tmp_path.iterdir())


def test_log_level_option():
    result = run_cli("--log-level", "BOGUS", "list")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
