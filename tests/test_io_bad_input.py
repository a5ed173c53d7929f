"""Bad input: each case raises an error that names the file, tree, branch, event and value,
or is corrected, counted and logged."""

from __future__ import annotations

import logging

import awkward as ak
import numpy as np
import pytest
import uproot

from helpers_io import random_events
from parnassus.core import events as ev
from parnassus.core.io import InputReport, count_events, detect_format, iter_events, read_events, write_events
from parnassus.exceptions import (
    InputFileNotFoundError,
    InvalidInputError,
    MissingBranchError,
    MissingTreeError,
    UnknownFormatError,
)

FIELDS = ("pt", "eta", "phi", "vx", "vy", "vz", "class")


def _write_tree(path, branches: dict, counters: dict | None = None, tree: str = "evt_tree"):
    """Write a TTree with jagged branches given as {name: jagged array} and scalar branches.

    Jagged branches get the automatic counters ``nauto_<name>``, so that ``counters``
    can add ntruth/npflow with any values.
    """
    jagged = {name: values for name, values in branches.items() if isinstance(values, ak.Array) and values.ndim == 2}
    scalars = {name: np.asarray(values) for name, values in branches.items() if name not in jagged}
    scalars.update({name: np.asarray(values, dtype=np.int32) for name, values in (counters or {}).items()})
    data = {**jagged, **scalars}
    with uproot.recreate(path) as file:
        file.mktree(
            tree,
            {name: (values.type.content if isinstance(values, ak.Array) else values.dtype) for name, values in data.items()},
            counter_name=lambda counted: f"nauto_{counted}",
        ).extend(data)


def _cms_branches(events, prefix="truth", collection="gen"):
    return {f"{prefix}_{field}": events[collection][field] for field in FIELDS}


def _with_value(events, collection, field, event_index, value):
    """Return a copy of ``events`` with the first particle of one event set to ``value``."""
    flat = ak.to_numpy(ak.flatten(events[collection][field])).astype(np.float64)
    counts = ak.num(events[collection])
    assert counts[event_index] > 0
    flat[int(np.sum(counts[:event_index]))] = value
    return ak.unflatten(flat, counts)


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.root"
    with pytest.raises(InputFileNotFoundError, match="nowhere.root not found"):
        read_events(path)
    with pytest.raises(FileNotFoundError):
        count_events(path)


@pytest.mark.parametrize("name", ["x.root", "x.parquet", "x.hepmc", "x.hepmc.gz"])
def test_text_file_with_event_suffix(tmp_path, name):
    path = tmp_path / name
    path.write_text("pt eta phi\n1 2 3\n")
    with pytest.raises(UnknownFormatError, match=r"x\..* is not a ROOT, Parquet or HepMC3 file \(it starts with 'pt eta phi"):
        read_events(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.root"
    path.touch()
    with pytest.raises(UnknownFormatError, match="is empty"):
        read_events(path)


def test_hepmc2_file(tmp_path):
    path = tmp_path / "old.hepmc"
    path.write_text("\nHepMC::Version 2.06.09\nHepMC::IO_GenEvent-START_EVENT_LISTING\n")
    with pytest.raises(UnknownFormatError, match="HepMC2"):
        read_events(path)


def test_content_beats_suffix(tmp_path, caplog):
    path = tmp_path / "really_parquet.root"
    events = random_events(3, seed=41)
    write_events(events, tmp_path / "a.parquet")
    (tmp_path / "a.parquet").rename(path)
    with caplog.at_level(logging.WARNING):
        assert detect_format(path) == "parquet"
    assert "contains parquet" in caplog.text


def test_unknown_output_suffix(tmp_path):
    with pytest.raises(UnknownFormatError, match="use one of the suffixes"):
        write_events(random_events(2, seed=42), tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []


def test_missing_tree(tmp_path):
    events = random_events(3, seed=43)
    path = tmp_path / "othertree.root"
    _write_tree(path, _cms_branches(events), tree="events")
    with pytest.raises(MissingTreeError) as error:
        read_events(path)
    message = str(error.value)
    assert "'evt_tree' not found" in message
    assert "othertree.root" in message
    assert "events (TTree)" in message
    assert isinstance(error.value, KeyError)


def test_rntuple_instead_of_ttree(tmp_path):
    path = tmp_path / "rntuple.root"
    with uproot.recreate(path) as file:
        file["evt_tree"] = {"truth": ak.Array([[{"pt": 1.0}]])}
    with pytest.raises(InvalidInputError, match="RNTuple, expected a TTree"):
        read_events(path)


def test_misspelled_branch(tmp_path):
    events = random_events(3, seed=44)
    branches = _cms_branches(events)
    branches["truth_Eta"] = branches.pop("truth_eta")
    path = tmp_path / "misspelled.root"
    _write_tree(path, branches)

    with pytest.raises(MissingBranchError) as error:
        read_events(path)
    assert error.value.branch == "truth_eta"
    assert error.value.tree == "evt_tree"
    assert "truth_Eta" in error.value.available
    assert "misspelled.root" in str(error.value)


def test_incomplete_pfc_branches(tmp_path):
    events = random_events(3, seed=45)
    branches = {**_cms_branches(events), **_cms_branches(events, "pflow", "pfc")}
    del branches["pflow_vz"]
    path = tmp_path / "partial.root"
    _write_tree(path, branches)
    with pytest.raises(MissingBranchError, match="branch 'pflow_vz' not found in tree 'evt_tree'"):
        read_events(path)


def test_counter_disagrees_with_lengths(tmp_path):
    events = random_events(6, seed=46)
    counts = ak.num(events.gen).to_numpy().copy()
    counts[3] += 1
    path = tmp_path / "counter.root"
    _write_tree(path, {**_cms_branches(events), "eventNumber": events.event_number.to_numpy()}, counters={"ntruth": counts})

    with pytest.raises(InvalidInputError) as error:
        read_events(path)
    message = str(error.value)
    assert "counter 'ntruth'" in message
    assert "entry 3 (event number 1009)" in message
    assert f"'truth_pt' has {counts[3] - 1} values" in message


def test_branches_of_different_lengths(tmp_path):
    events = random_events(4, seed=47)
    branches = _cms_branches(events)
    other = random_events(4, seed=48)
    branches["truth_vz"] = other.gen.vz
    path = tmp_path / "lengths.root"
    _write_tree(path, branches)
    with pytest.raises(InvalidInputError, match="'truth_vz' of tree 'evt_tree' .* has .* values in entry"):
        read_events(path)


@pytest.mark.parametrize("value, kind", [(np.nan, "NaN"), (np.inf, "infinite"), (-np.inf, "infinite")])
def test_nan_or_infinite_value(tmp_path, value, kind):
    events = random_events(5, seed=49)
    branches = {**_cms_branches(events), "eventNumber": events.event_number.to_numpy()}
    branches["truth_eta"] = _with_value(events, "gen", "eta", 2, value)
    path = tmp_path / "nan.root"
    _write_tree(path, branches)

    with pytest.raises(InvalidInputError) as error:
        read_events(path)
    message = str(error.value)
    assert f"branch 'truth_eta' of tree 'evt_tree' in {path}" in message
    assert f"a {kind} value" in message
    assert "entry 2 (event number 1006)" in message


def test_phi_outside_range_is_wrapped_counted_and_logged(tmp_path, caplog):
    events = random_events(5, seed=50)
    branches = {**_cms_branches(events), "eventNumber": events.event_number.to_numpy()}
    branches["truth_phi"] = _with_value(events, "gen", "phi", 1, 4.0)
    branches["pflow_phi"] = _with_value(events, "pfc", "phi", 3, -7.0)
    branches.update({f"pflow_{f}": events.pfc[f] for f in FIELDS if f != "phi"})
    path = tmp_path / "phi.root"
    _write_tree(path, branches)

    report = InputReport(str(path))
    with caplog.at_level(logging.WARNING):
        back = read_events(path, report=report)

    assert report.phi_wrapped == {"truth_phi": 1, "pflow_phi": 1}
    assert back.gen.phi[1][0] == pytest.approx(4.0 - 2 * np.pi, abs=1e-6)
    assert back.pfc.phi[3][0] == pytest.approx(-7.0 + 2 * np.pi, abs=1e-6)
    assert ak.all(np.abs(back.gen.phi) <= np.pi + 1e-6)
    assert "wrapped phi of 1 particles in truth_phi" in caplog.text
    assert "entry 1 (event number 1003)" in caplog.text


def test_phi_at_float32_pi_is_not_counted(tmp_path):
    events = random_events(2, seed=51, with_pfc=False)
    branches = _cms_branches(events)
    branches["truth_phi"] = _with_value(events, "gen", "phi", 0, float(np.float32(np.pi)))
    path = tmp_path / "pi.root"
    _write_tree(path, branches)
    report = InputReport(str(path))
    read_events(path, report=report)
    assert report.phi_wrapped == {}


@pytest.mark.parametrize("value", [7, -1, 5])
def test_class_outside_range(tmp_path, value):
    events = random_events(5, seed=52)
    branches = {**_cms_branches(events), "eventNumber": events.event_number.to_numpy()}
    branches["truth_class"] = ak.values_astype(_with_value(events, "gen", "class", 4, value), np.int64)
    path = tmp_path / "class.root"
    _write_tree(path, branches)

    with pytest.raises(InvalidInputError) as error:
        read_events(path)
    message = str(error.value)
    assert "branch 'truth_class'" in message
    assert f"class code {value}" in message
    assert "entry 4 (event number 1012)" in message
    assert "allowed codes are 0 (charged hadron), 1 (electron), 2 (muon), 3 (neutral hadron), 4 (photon)" in message


def test_class_stored_as_double(tmp_path):
    events = random_events(4, seed=53, with_pfc=False)
    branches = _cms_branches(events)
    branches["truth_class"] = ak.values_astype(events.gen["class"], np.float64)
    path = tmp_path / "double.root"
    _write_tree(path, branches)
    assert read_events(path).gen["class"].tolist() == events.gen["class"].tolist()

    branches["truth_class"] = _with_value(events, "gen", "class", 1, 1.5)
    _write_tree(path, branches)
    with pytest.raises(InvalidInputError, match="'truth_class' .* non-integer value 1.5 in entry 1"):
        read_events(path)


def test_empty_events_are_kept_counted_and_logged(tmp_path, caplog):
    events = random_events(6, seed=54)
    gen = ak.concatenate([events.gen[:2], events.gen[2:4, :0], events.gen[4:]])
    pfc = ak.concatenate([events.pfc[:3], events.pfc[3:4, :0], events.pfc[4:]])
    path = tmp_path / "empty_events.root"
    write_events(ev.make_events(gen, pfc, events.event_number), path)

    report = InputReport(str(path))
    with caplog.at_level(logging.WARNING):
        back = read_events(path, report=report)
    assert len(back) == 6
    assert report.no_gen_events == 2
    assert report.empty_events == 1
    assert "2 of 6 events have no GEN particle; kept (first: entry 2" in caplog.text
    assert "1 of 6 events have neither GEN particles nor PFCs" in caplog.text


def test_nonpositive_pt_is_kept_and_logged(tmp_path, caplog):
    events = random_events(3, seed=55, with_pfc=False)
    branches = _cms_branches(events)
    branches["truth_pt"] = _with_value(events, "gen", "pt", 2, -1.0)
    path = tmp_path / "negative.root"
    _write_tree(path, branches)
    report = InputReport(str(path))
    with caplog.at_level(logging.WARNING):
        back = read_events(path, report=report)
    assert back.gen.pt[2][0] == -1.0
    assert report.nonpositive_pt == {"truth_pt": 1}
    assert "1 particles in truth_pt have pT <= 0 GeV" in caplog.text


def test_scalar_branch_where_jagged_expected(tmp_path):
    events = random_events(3, seed=56, with_pfc=False)
    branches = _cms_branches(events)
    branches["truth_vx"] = np.zeros(3, dtype=np.float32)
    path = tmp_path / "scalar.root"
    _write_tree(path, branches)
    with pytest.raises(InvalidInputError, match="'truth_vx' .* expected one list of numbers per event"):
        read_events(path)


def test_truncated_root_file(tmp_path):
    path = tmp_path / "full.root"
    write_events(random_events(200, seed=57), path)
    data = path.read_bytes()
    truncated = tmp_path / "truncated.root"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidInputError, match="truncated.root"):
        read_events(truncated)


def test_writing_invalid_events_leaves_no_file(tmp_path):
    events = random_events(4, seed=58)
    bad_gen = ak.with_field(events.gen, _with_value(events, "gen", "pt", 1, np.nan), "pt")
    bad = ak.with_field(events, bad_gen, "gen")
    for name in ("bad.root", "bad.parquet", "bad.hepmc"):
        with pytest.raises(InvalidInputError, match=r"field 'gen.pt' .* NaN .* entry 1"):
            write_events(bad, tmp_path / name)
    assert list(tmp_path.iterdir()) == []

    bad_class = ak.with_field(events.gen, ak.values_astype(_with_value(events, "gen", "class", 0, 9), np.int64), "class")
    with pytest.raises(InvalidInputError, match="class code 9"):
        write_events(ak.with_field(events, bad_class, "gen"), tmp_path / "class.root")
    assert list(tmp_path.iterdir()) == []


def test_invalid_chunk_arguments(tmp_path):
    path = tmp_path / "events.root"
    write_events(random_events(3, seed=59), path)
    with pytest.raises(ValueError, match="entry_start must be a non-negative entry number, got -1"):
        read_events(path, entry_start=-1)
    with pytest.raises(ValueError, match="step_size must be at least 1 event, got 0"):
        next(iter_events(path, step_size=0))
