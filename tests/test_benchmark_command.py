"""Tests of `parnassus benchmark` on real trained models and real ROOT files.

The data are the toy ttbar-like events of :mod:`parnassus.evaluation.synthetic`
(about 150 GEN particles per event; PFCs from a per-particle smearing response
with losses and fakes). The smearing backend fitted to them reproduces that
response, which makes it a model with a known fidelity: its samples should be
statistically close to the reference.
"""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from parnassus.cli import main
from parnassus.core import events as ev
from parnassus.core import plugins
from parnassus.core.io import read_events, write_events
from parnassus.evaluation import solver_benchmark as bench
from parnassus.evaluation.pipeline import Settings, evaluate_process
from parnassus.evaluation.synthetic import ToyDetector, toy_events
from parnassus.exceptions import InvalidSettingError, PluginNotFoundError

N_TRAIN = 600
N_TEST = 120
BOOTSTRAP = "5"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("benchmark-data")
    write_events(toy_events(N_TRAIN, gen_seed=0, pfc_seed=1), folder / "train.root")
    write_events(toy_events(N_TEST, gen_seed=5, pfc_seed=6), folder / "test.root")
    # The same GEN with a response whose pT scale is 25 % too high: a model fitted to it is wrong on purpose.
    write_events(toy_events(N_TRAIN, gen_seed=0, pfc_seed=1, detector=ToyDetector(pt_scale=1.25)), folder / "biased.root")
    return folder


def train_smearing(data_file, out_dir):
    code = main(
        ["train", "--detector", "cmslike", "--backend", "smearing", "--data", str(data_file), "--preset", "tiny", "-o", str(out_dir)]
    )
    assert code == 0
    return out_dir


@pytest.fixture(scope="module")
def smearing_weights(data, tmp_path_factory):
    return train_smearing(data / "train.root", tmp_path_factory.mktemp("smearing") / "model")


def benchmark_args(weights, test_file, output, *extra):
    return [
        "benchmark", "--detector", "cmslike", "--backend", "smearing", "--weights", str(weights),
        "-i", str(test_file), "--bootstrap", BOOTSTRAP, "-o", str(output), *extra,
    ]


@pytest.fixture(scope="module")
def smearing_tables(data, smearing_weights, tmp_path_factory):
    output = tmp_path_factory.mktemp("smearing-bench") / "bench.md"
    code = main(benchmark_args(smearing_weights, data / "test.root", output, "--solver", "euler,midpoint", "--steps", "4,8"))
    assert code == 0
    return output


def read_csv(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


# --- the smearing backend: one run, solver and steps have no effect -------------------------------


def test_smearing_writes_three_tables(smearing_tables):
    folder = smearing_tables.parent
    assert sorted(path.name for path in folder.iterdir()) == ["bench.csv", "bench.json", "bench.md"]


def test_smearing_single_row_without_solver(smearing_tables):
    rows = read_csv(smearing_tables.with_suffix(".csv"))
    assert len(rows) == 1
    assert list(rows[0]) == list(bench.COLUMNS)
    assert rows[0]["solver"] == ""
    assert rows[0]["steps"] == ""
    assert rows[0]["nfe"] == ""
    assert int(rows[0]["events"]) == N_TEST


def test_smearing_speed_and_score_positive(smearing_tables):
    row = read_csv(smearing_tables.with_suffix(".csv"))[0]
    for column in ("events_per_second", "seconds", "particle_stage_seconds", "score",
                   "distance_n", "distance_ht_residual", "distance_c2_residual"):
        value = float(row[column])
        assert math.isfinite(value), column
        assert value > 0, column
    assert float(row["event_stage_seconds"]) == 0.0  # the smearing model has no event stage
    assert int(row["redraws"]) == 0


def test_smearing_note_in_markdown_and_json(smearing_tables):
    markdown = smearing_tables.read_text()
    document = json.loads(smearing_tables.with_suffix(".json").read_text())
    assert "samples without an ODE solver" in markdown
    assert "samples without an ODE solver" in document["note"]
    assert len(document["rows"]) == 1
    assert document["rows"][0]["solver"] is None
    assert document["context"]["events"] == N_TEST
    assert document["context"]["backend"] == "smearing"
    assert set(document["floors"]) == set(bench.HEADLINE_OBSERVABLES.values())


def test_smearing_markdown_table_columns(smearing_tables):
    lines = smearing_tables.read_text().splitlines()
    header = next(line for line in lines if line.startswith("| solver"))
    cells = [cell.strip() for cell in header.strip("|").split("|")]
    assert cells == ["solver", "steps", "NFE", "events/s", "event stage [s]", "particle stage [s]", "redraws",
                     "score", "W1 N", "W1 HT residual", "W1 C2 residual"]
    body = [line for line in lines if line.startswith("| n/a")]
    assert len(body) == 1


def test_score_matches_evaluate_process(smearing_tables, smearing_weights, data):
    """The table's score is the one `evaluate_process` gives for the same seed and reference."""
    card = plugins.load_detector("cmslike")
    model = plugins.load_backend("smearing").load(smearing_weights, card)
    events = read_events(data / "test.root", require_pfc=True)
    reference, _ = card.preprocess(events)
    gen_only, _ = card.preprocess(ev.make_events(events.gen, None, events.event_number))
    sampled, _ = model.sample(gen_only, seed=0)
    settings = Settings(abs_eta_max=card.eval_abs_eta_max, n_bootstrap=int(BOOTSTRAP), seed=0)
    expected = evaluate_process("test", reference, {"s": sampled}, settings, card).comparison.score("s")

    row = read_csv(smearing_tables.with_suffix(".csv"))[0]
    assert float(row["score"]) == pytest.approx(expected, rel=1e-9)


def test_smearing_score_near_statistical_floor(smearing_tables):
    # The smearing tables reproduce the toy response, so the sample is statistically like the
    # reference: about 1/sqrt(2) from the halved floor, lower where GEN is shared. The bound
    # leaves room for the binning of the tables and for 120 events.
    row = read_csv(smearing_tables.with_suffix(".csv"))[0]
    assert float(row["score"]) < 1.3


def test_biased_model_scores_worse(data, smearing_tables, tmp_path):
    """A model fitted to a response with a 25 % too high pT scale is far from the reference."""
    biased = train_smearing(data / "biased.root", tmp_path / "biased-model")
    output = tmp_path / "biased.md"
    assert main(benchmark_args(biased, data / "test.root", output)) == 0

    good = float(read_csv(smearing_tables.with_suffix(".csv"))[0]["score"])
    row = read_csv(output.with_suffix(".csv"))[0]
    # The score is a median over all observables, and angles, vertices and class counts do not
    # see the pT scale, so the score rises less than the pT-like distances do.
    assert float(row["score"]) > 1.3
    assert float(row["score"]) > 2 * good
    # The HT residual moves by about the pT scale: far more than its floor.
    assert float(row["ratio_ht_residual"]) > 5.0


def test_prints_markdown_table(data, smearing_weights, tmp_path, capsys):
    output = tmp_path / "printed"
    arguments = benchmark_args(smearing_weights, data / "test.root", output, "--events", "40", "--warmup-events", "0", "--repeat", "2")
    assert main(arguments) == 0
    printed = capsys.readouterr().out
    assert printed == (tmp_path / "printed.md").read_text()
    assert "40 events" in printed
    assert "fastest of 2 timed repetitions" in printed
    document = json.loads((tmp_path / "printed.json").read_text())
    assert document["context"]["repeat"] == 2


def test_existing_tables_need_overwrite(smearing_weights, data, tmp_path, caplog):
    output = tmp_path / "again.md"
    arguments = benchmark_args(smearing_weights, data / "test.root", output, "--events", "30")
    assert main(arguments) == 0
    before = output.read_text()

    assert main(arguments) == 1
    assert "--overwrite" in caplog.text
    assert output.read_text() == before
    assert main([*arguments, "--overwrite"]) == 0
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]


# --- input checks, made before any file is read or model loaded ------------------------------------


def bad_args(tmp_path, *extra):
    # The weights and input do not exist: only the checks of the options can run.
    return ["benchmark", "--backend", "flow-matching", "--weights", str(tmp_path / "none"),
            "-i", str(tmp_path / "absent.root"), "-o", str(tmp_path / "b.md"), *extra]


def test_unknown_solver_named(tmp_path, caplog):
    assert main(bad_args(tmp_path, "--solver", "euler,eulr", "--steps", "4")) == 1
    assert "'eulr'" in caplog.text
    assert "registered solvers" in caplog.text
    assert "dpm-solver++2m" in caplog.text
    assert not (tmp_path / "b.md").exists()


@pytest.mark.parametrize(
    "steps, named",
    [("4,x", "'x'"), ("4,0", "'0'"), ("4,-2", "'-2'"), ("4,2.5", "'2.5'"), ("4,,8", "position 2"), ("4,4", "'4'")],
)
def test_bad_steps_named(tmp_path, caplog, steps, named):
    assert main(bad_args(tmp_path, "--solver", "euler", "--steps", steps)) == 1
    assert "--steps" in caplog.text
    assert named in caplog.text


def test_steps_below_solver_minimum(tmp_path, caplog):
    assert main(bad_args(tmp_path, "--solver", "euler,pndm", "--steps", "2,8")) == 1
    assert "pndm" in caplog.text
    assert "at least 4" in caplog.text


def test_output_suffix_checked(tmp_path, caplog):
    assert main(bad_args(tmp_path, "--solver", "euler", "--steps", "4", "-o", str(tmp_path / "b.txt"))) == 1
    assert "'.txt'" in caplog.text


def test_missing_input_named(tmp_path, caplog):
    assert main(bad_args(tmp_path, "--solver", "euler", "--steps", "4")) == 1
    assert "absent.root" in caplog.text


def test_parse_steps_and_solvers():
    assert bench.parse_steps(" 4, 8,16 ") == [4, 8, 16]
    assert bench.parse_solvers("euler, dpm-solver++2m") == ["euler", "dpm-solver++2m"]
    with pytest.raises(PluginNotFoundError, match="'nope'"):
        bench.parse_solvers("nope")
    with pytest.raises(InvalidSettingError, match="'euler' more than once"):
        bench.parse_solvers("euler,euler")


def test_plan_runs_order_and_nfe():
    runs = bench.plan_runs(["euler", "heun", "pndm"], [4, 8])
    assert [(run.solver, run.steps) for run in runs] == [
        ("euler", 4), ("euler", 8), ("heun", 4), ("heun", 8), ("pndm", 4), ("pndm", 8)
    ]
    # euler: N evaluations; heun: 2 N; pndm: 3 RK4 steps of 4 then one per step, N + 9.
    assert [run.nfe for run in runs] == [4, 8, 8, 16, 13, 17]
    assert bench.plan_runs(["euler"], [4, 8], uses_solver=False) == [bench.Run(None, None, None)]


def test_table_paths():
    for name in ("bench.md", "bench.csv", "bench.json", "bench"):
        paths = bench.table_paths(f"out/{name}")
        assert [str(path) for path in paths.values()] == ["out/bench.md", "out/bench.csv", "out/bench.json"]


# --- a real ODE backend ------------------------------------------------------------------------


@pytest.mark.torch
def test_flow_matching_solvers_and_steps(data, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("parnassus.backends.flow_matching.training")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")

    weights = tmp_path / "fm"
    code = main(["train", "--detector", "cmslike", "--backend", "flow-matching", "--data", str(data / "train.root"),
                 "--preset", "tiny", "--epochs", "1", "--device", "cpu", "-o", str(weights)])
    assert code == 0

    output = tmp_path / "fm.md"
    code = main(["benchmark", "--detector", "cmslike", "--backend", "flow-matching", "--weights", str(weights),
                 "--solver", "euler,dpm-solver++2m", "--steps", "2,4", "-i", str(data / "test.root"),
                 "--events", "60", "--bootstrap", BOOTSTRAP, "--device", "cpu", "-o", str(output)])
    assert code == 0

    rows = read_csv(output.with_suffix(".csv"))
    assert [(row["solver"], int(row["steps"])) for row in rows] == [
        ("euler", 2), ("euler", 4), ("dpm-solver++2m", 2), ("dpm-solver++2m", 4)
    ]
    # Both solvers make one network call per step.
    assert [int(row["nfe"]) for row in rows] == [2, 4, 2, 4]
    for row in rows:
        assert int(row["events"]) == 60
        for column in ("events_per_second", "event_stage_seconds", "particle_stage_seconds", "score"):
            value = float(row[column])
            assert math.isfinite(value), column
            assert value > 0, column
        assert int(row["redraws"]) >= 0
    scores = np.array([float(row["score"]) for row in rows])
    assert np.all(np.isfinite(scores))
    assert "samples without an ODE solver" not in output.read_text()
