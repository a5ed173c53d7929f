"""`parnassus convert`: every format pair, streaming, atomic output."""

from __future__ import annotations

import logging

import awkward as ak
import numpy as np
import pytest
import uproot

from helpers_io import assert_same_events, random_events, write_pythia_hepmc
from parnassus.cli import main
from parnassus.core.io import read_events, write_events

FIELDS = ("pt", "eta", "phi", "vx", "vy", "vz", "class")
EVT_TREE_BRANCHES = (
    {f"truth_{f}" for f in FIELDS} | {f"pflow_{f}" for f in FIELDS} | {"ntruth", "npflow", "eventNumber"}
)


def convert(*args) -> int:
    return main(["convert", *map(str, args)])


def test_parquet_to_root_has_cms_layout(tmp_path):
    events = random_events(23, seed=61)
    source = tmp_path / "in.parquet"
    write_events(events, source)
    target = tmp_path / "out.root"

    assert convert(source, target, "--step-size", "5") == 0

    with uproot.open(target) as file:
        tree = file["evt_tree"]
        assert set(tree.keys()) == EVT_TREE_BRANCHES
        arrays = tree.arrays(library="ak")
    for collection, prefix in (("gen", "truth"), ("pfc", "pflow")):
        for field in FIELDS:
            np.testing.assert_array_equal(
                ak.to_numpy(ak.flatten(arrays[f"{prefix}_{field}"])), ak.to_numpy(ak.flatten(events[collection][field]))
            )
        np.testing.assert_array_equal(arrays[f"n{prefix}"], ak.num(events[collection]))
    np.testing.assert_array_equal(arrays["eventNumber"], events.event_number)


@pytest.mark.parametrize("first, second", [(".root", ".parquet"), (".parquet", ".root"), (".root", ".root")])
def test_chain_round_trip(tmp_path, first, second):
    events = random_events(17, seed=62, with_pdgid=True)
    source = tmp_path / f"source{first}"
    write_events(events, source)
    middle = tmp_path / f"middle{second}"
    final = tmp_path / f"final{first}"

    assert convert(source, middle, "--step-size", "4") == 0
    assert convert(middle, final) == 0
    assert_same_events(read_events(final), events)


@pytest.mark.parametrize("suffix", [".hepmc", ".hepmc.gz"])
def test_root_to_hepmc_and_back(tmp_path, suffix):
    events = random_events(9, seed=63, with_pfc=False, with_pdgid=True)
    source = tmp_path / "gen.root"
    write_events(events, source)
    hepmc = tmp_path / f"gen{suffix}"
    back = tmp_path / "back.root"

    assert convert(source, hepmc, "--step-size", "2") == 0
    assert convert(hepmc, back, "--step-size", "4") == 0
    with uproot.open(back) as file:
        assert set(file["evt_tree"].keys()) == {f"truth_{f}" for f in FIELDS} | {"truth_pdgid", "ntruth", "eventNumber"}
    assert_same_events(read_events(back), events)


def test_pythia_hepmc_to_evt_tree(tmp_path):
    source = tmp_path / "ttbar.hepmc3"
    expected = write_pythia_hepmc(source, n_events=2, seed=12)
    target = tmp_path / "ttbar.root"

    assert convert(source, target) == 0

    with uproot.open(target) as file:
        arrays = file["evt_tree"].arrays(library="np")
    assert arrays["eventNumber"].tolist() == [t["event_number"] for t in expected]
    for i, truth in enumerate(expected):
        assert arrays["ntruth"][i] == len(truth["pt"])
        order = np.argsort(arrays["truth_pt"][i])
        truth_order = np.argsort(truth["pt"])
        for field in ("pt", "eta", "phi", "vx", "vy", "vz"):
            np.testing.assert_allclose(
                arrays[f"truth_{field}"][i][order], truth[field][truth_order], rtol=2e-7, atol=1e-7, err_msg=field
            )
        np.testing.assert_array_equal(arrays["truth_pdgid"][i][order], truth["pdgid"][truth_order])


def test_failure_midway_leaves_no_output(tmp_path, caplog):
    events = random_events(20, seed=64)
    flat = ak.to_numpy(ak.flatten(events.gen.eta)).copy()
    counts = ak.num(events.gen)
    flat[int(np.sum(counts[:14]))] = np.nan  # event 14, in the third chunk of 5
    bad = ak.with_field(events, ak.with_field(events.gen, ak.unflatten(flat, counts), "eta"), "gen")
    source = tmp_path / "bad.parquet"
    ak.to_parquet(bad, source)

    for name in ("out.root", "out.parquet", "out.hepmc.gz"):
        with caplog.at_level(logging.ERROR):
            assert convert(source, tmp_path / name, "--step-size", "5") == 1
        assert "entry 14" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.parquet"]


def test_failure_keeps_previous_output(tmp_path):
    good = tmp_path / "good.root"
    write_events(random_events(5, seed=65), good)
    target = tmp_path / "out.parquet"
    write_events(random_events(3, seed=66), target)
    before = target.read_bytes()

    broken = tmp_path / "broken.root"
    broken.write_bytes(good.read_bytes()[:300])
    assert convert(broken, target) == 1
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.root", "good.root", "out.parquet"]


def test_bad_arguments(tmp_path, caplog):
    source = tmp_path / "in.root"
    write_events(random_events(3, seed=67), source)
    with caplog.at_level(logging.ERROR):
        assert convert(tmp_path / "missing.root", tmp_path / "out.root") == 1
        assert "missing.root not found" in caplog.text
        assert convert(source, tmp_path / "out.txt") == 1
        assert "use one of the suffixes" in caplog.text
        assert convert(source, tmp_path / "out.root", "--step-size", "0") == 1
        assert "--step-size must be at least 1" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.root"]


def test_help_names_units(capsys):
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    text = capsys.readouterr().out
    assert "--step-size N" in text
    assert "events" in text
