"""Tests of scripts/make_datasets.py: chunked generation, resuming, simulation, locking."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import yaml

from parnassus.core.io import count_events, read_events
from parnassus.generation import MAX_EVENTS_PER_SEED, generate_events

pytest.importorskip("pythia8mc")

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_datasets.py"


@pytest.fixture(scope="module")
def make_datasets():
    spec = importlib.util.spec_from_file_location("make_datasets", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    # dataclasses look the module up in sys.modules while the class is made.
    sys.modules["make_datasets"] = module
    spec.loader.exec_module(module)
    return module


def small_run(output: Path, *extra: str) -> list[str]:
    return [
        "--output", str(output), "--train-events", "0", "--validation-events", "0", "--test-events", "5",
        "--minbias-events", "12", "--chunk-size", "4", "--jobs", "1", "--seed", "40", *extra,
    ]


def test_gen_chunks_and_resume(make_datasets, tmp_path):
    argv = small_run(tmp_path, "--pieces", "test-ood", "--skip-simulation")
    assert make_datasets.main(argv) == 0

    folder = tmp_path / "gen" / "test-ood"
    names = sorted(path.name for path in folder.iterdir())
    assert names == [
        "h4l_0000000-0000003.root", "h4l_0000004-0000004.root",
        "qcd-600-800_0000000-0000003.root", "qcd-600-800_0000004-0000004.root",
    ]
    # The chunks are pieces of one seed's stream: together they equal one generation.
    h4l = ak.concatenate([read_events(folder / name) for name in names[:2]])
    assert ak.array_equal(h4l, generate_events("h4l", 5, seed=45))
    np.testing.assert_array_equal(ak.to_numpy(h4l.event_number), 45 * MAX_EVENTS_PER_SEED + np.arange(5))

    manifest = yaml.safe_load((tmp_path / "datasets.yaml").read_text())
    assert [(s["piece"], s["process"], s["events"], s["seed"]) for s in manifest["samples"]] == [
        ("test-ood", "h4l", 5, 45), ("test-ood", "qcd-600-800", 5, 46),
    ]
    assert (tmp_path / "make_datasets.log").stat().st_size > 0

    # A rerun after a lost chunk makes that chunk again, the same, and touches nothing else.
    lost = folder / names[0]
    lost.unlink()
    kept_mtimes = {name: (folder / name).stat().st_mtime_ns for name in names[1:]}
    assert make_datasets.main(argv) == 0
    assert ak.array_equal(read_events(lost), h4l[:4])
    assert {name: (folder / name).stat().st_mtime_ns for name in names[1:]} == kept_mtimes


def test_simulated_pieces(make_datasets, tmp_path):
    assert make_datasets.main(small_run(tmp_path, "--pieces", "test-ood", "--test-events", "3")) == 0

    assert count_events(tmp_path / "pileup" / "minbias.root") == 12
    full = tmp_path / "full" / "test-ood" / "h4l_0000000-0000002.root"
    events = read_events(full, require_pfc=True)
    assert len(events) == 3
    assert ak.all(ak.num(events.pfc) > 0)
    manifest = yaml.safe_load((tmp_path / "datasets.yaml").read_text())
    assert manifest["simulation"]["pileup_library"] == "pileup/minbias.root"
    assert [s["piece"] for s in manifest["samples"]] == ["pileup", "test-ood", "test-ood"]


def test_stale_temporary_files_removed(make_datasets, tmp_path):
    stale = tmp_path / "gen" / "test" / ".ttbar_0000000-0000003.partial-99999.root"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"unfinished")
    assert make_datasets.main(small_run(tmp_path, "--pieces", "test", "--skip-simulation", "--test-events", "1")) == 0
    assert not stale.exists()


def test_second_run_on_folder_rejected(make_datasets, tmp_path):
    lock = make_datasets.acquire_lock(tmp_path)
    try:
        with pytest.raises(SystemExit, match="another make_datasets run"):
            make_datasets.acquire_lock(tmp_path)
    finally:
        lock.close()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--test-events", "-1"], "--test-events must lie in 0 .. 10000000"),
        (["--train-events", "20000001"], "--train-events must lie in 0 .. 20000000"),
        (["--chunk-size", "0"], "--chunk-size must be at least 1"),
        (["--seed", "89995"], "--seed must lie in 0 .. 89991"),
        (["--minbias-events", "0"], "--minbias-events 0 leaves no pileup library"),
    ],
)
def test_invalid_options(make_datasets, tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as info:
        make_datasets.parse_arguments(small_run(tmp_path, *extra))
    assert info.value.code == 2
    assert message in capsys.readouterr().err
