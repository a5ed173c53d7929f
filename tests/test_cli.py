"""Tests of the parnassus command: version, help of every subcommand, info, errors."""

import subprocess
import sys

import awkward as ak
import pytest
import yaml

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


@pytest.fixture(scope="module")
def smearing_weights(tmp_path_factory):
    """A smearing model for the cmslike card, fitted on toy events through the CLI."""
    from parnassus.core.io import write_events
    from parnassus.evaluation.synthetic import toy_events

    folder = tmp_path_factory.mktemp("smearing")
    data = folder / "train.parquet"
    write_events(toy_events(400, gen_seed=3), data)
    weights = folder / "weights"
    code = main(["train", "--detector", "cmslike", "--backend", "smearing", "--data", str(data),
                 "--preset", "tiny", "-o", str(weights)])
    assert code == 0
    return weights


def test_train_records_command(smearing_weights):
    info = yaml.safe_load((smearing_weights / "model.yaml").read_text())
    assert info["command"].startswith("parnassus train --detector cmslike --backend smearing")


def test_run_without_input_generates_ttbar(smearing_weights, tmp_path):
    from parnassus.core.io import read_events

    output = tmp_path / "reco.root"
    code = main(["run", "--detector", "cmslike", "--backend", "smearing", "--weights", str(smearing_weights),
                 "--events", "3", "--seed", "7", "-o", str(output)])
    assert code == 0
    events = read_events(output, require_pfc=True)
    assert len(events) == 3
    # Pythia8 ttbar events at 7 TeV carry well over 50 GEN particles above 0.25 GeV.
    assert ak.all(ak.num(events.gen) > 50)
    assert ak.all(events.gen.pt > 0.25)
    assert ak.all(ak.num(events.pfc) > 0)
    assert ak.all(events.pfc.pt > 1.0)
    # Event numbers of generated events are seed * 10**7 + index.
    assert events.event_number.to_list() == [70000000, 70000001, 70000002]


def test_run_rejects_unknown_solver(smearing_weights, tmp_path, caplog):
    code = main(["run", "--detector", "cmslike", "--backend", "smearing", "--weights", str(smearing_weights),
                 "--solver", "no-such-solver", "-o", str(tmp_path / "out.root")])
    assert code == 1
    assert "no solver named 'no-such-solver'" in caplog.text
    assert not (tmp_path / "out.root").exists()


def test_run_missing_input(smearing_weights, tmp_path, caplog):
    code = main(["run", "--detector", "cmslike", "--backend", "smearing", "--weights", str(smearing_weights),
                 "-i", str(tmp_path / "missing.root"), "-o", str(tmp_path / "out.root")])
    assert code == 1
    assert "missing.root" in caplog.text
    assert not (tmp_path / "out.root").exists()


def test_run_rejects_hepmc_output(smearing_weights, tmp_path, caplog):
    code = main(["run", "--detector", "cmslike", "--backend", "smearing", "--weights", str(smearing_weights),
                 "--events", "2", "-o", str(tmp_path / "reco.hepmc.gz")])
    assert code == 1
    assert "HepMC3 files contain GEN particles only" in caplog.text
    assert not list(tmp_path.iterdir())


def test_run_rejects_output_equal_to_input(smearing_weights, tmp_path, caplog):
    from parnassus.core.io import write_events
    from parnassus.evaluation.synthetic import toy_events

    path = tmp_path / "gen.root"
    write_events(toy_events(5), path)
    before = path.read_bytes()
    code = main(["run", "--detector", "cmslike", "--backend", "smearing", "--weights", str(smearing_weights),
                 "-i", str(path), "-o", str(path)])
    assert code == 1
    assert "is the input file" in caplog.text
    assert path.read_bytes() == before


def test_run_text_file_input_one_error(smearing_weights, tmp_path, caplog):
    fake = tmp_path / "fake.root"
    fake.write_text("not a ROOT file\n")
    code = main(["run", "--detector", "cmslike", "--backend", "smearing", "--weights", str(smearing_weights),
                 "-i", str(fake), "-o", str(tmp_path / "out.root")])
    assert code == 1
    errors = [record for record in caplog.records if record.levelname == "ERROR"]
    assert len(errors) == 1
    assert "fake.root" in errors[0].getMessage()
    assert not (tmp_path / "out.root").exists()
