"""ROOT evt_tree: the CMS Open Simulation layout, written and read back."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot

from helpers_io import assert_same_events, random_events
from parnassus.core import events as ev
from parnassus.core.io import EventWriter, InputReport, count_events, iter_events, read_events, write_events
from parnassus.exceptions import InvalidInputError, MissingBranchError

FIELDS = ("pt", "eta", "phi", "vx", "vy", "vz", "class")
GEN_BRANCHES = {f"truth_{f}" for f in FIELDS} | {"ntruth"}
PFC_BRANCHES = {f"pflow_{f}" for f in FIELDS} | {"npflow"}


def test_written_tree_has_exact_branches(tmp_path):
    events = random_events(30, seed=2, with_pdgid=True)
    path = tmp_path / "events.root"
    write_events(events, path)

    with uproot.open(path) as file:
        assert set(file.keys(cycle=False)) == {"evt_tree"}
        assert file.classnames(cycle=False)["evt_tree"] == "TTree"
        tree = file["evt_tree"]
        assert set(tree.keys()) == GEN_BRANCHES | PFC_BRANCHES | {"truth_pdgid", "eventNumber"}
        types = tree.typenames()
        arrays = tree.arrays(library="ak")

    assert types["truth_pt"] == "float[]"
    assert types["pflow_vz"] == "float[]"
    assert types["truth_class"] == "int32_t[]"
    assert types["truth_pdgid"] == "int32_t[]"
    assert types["eventNumber"] == "int64_t"
    assert types["ntruth"] == "int32_t"

    for collection, prefix in (("gen", "truth"), ("pfc", "pflow")):
        for field in FIELDS:
            np.testing.assert_array_equal(
                ak.to_numpy(ak.flatten(arrays[f"{prefix}_{field}"])),
                ak.to_numpy(ak.flatten(events[collection][field])),
            )
        np.testing.assert_array_equal(arrays[f"n{prefix}"], ak.num(events[collection]))
    np.testing.assert_array_equal(ak.flatten(arrays["truth_pdgid"]), ak.flatten(events.gen.pdgid))
    np.testing.assert_array_equal(arrays["eventNumber"], events.event_number)


def test_round_trip_keeps_values_and_dtypes(tmp_path):
    events = random_events(40, seed=3, with_pdgid=True)
    path = tmp_path / "events.root"
    write_events(events, path)
    back = read_events(path)

    assert_same_events(back, events)
    assert back.gen.pt.type.content.content.primitive == "float32"
    assert back.gen["class"].type.content.content.primitive == "int8"
    assert back.gen.pdgid.type.content.content.primitive == "int32"
    assert back.event_number.type.content.primitive == "int64"
    assert count_events(path) == 40


def test_gen_only_file(tmp_path):
    events = random_events(12, seed=4, with_pfc=False)
    path = tmp_path / "gen.root"
    write_events(events, path)

    with uproot.open(path) as file:
        assert set(file["evt_tree"].keys()) == GEN_BRANCHES | {"eventNumber"}
    back = read_events(path)
    assert ak.fields(back) == ["gen", "event_number"]
    assert_same_events(back, events)

    with pytest.raises(MissingBranchError) as error:
        read_events(path, require_pfc=True)
    assert error.value.branch == "pflow_pt"
    assert "truth_pt" in error.value.available


def test_cms_style_dtypes_are_accepted(tmp_path):
    """The CMS files store int64 classes; some files store doubles and int32 event numbers."""
    rng = np.random.default_rng(5)
    counts = np.array([3, 0, 5, 2])
    n = counts.sum()

    def jagged(values):
        return ak.unflatten(values, counts)

    truth = ak.zip(
        {
            "pt": jagged(rng.uniform(0.5, 20, n)),
            "eta": jagged(rng.uniform(-2.5, 2.5, n)),
            "phi": jagged(rng.uniform(-3, 3, n)),
            "vx": jagged(np.zeros(n)),
            "vy": jagged(np.zeros(n)),
            "vz": jagged(rng.normal(0, 5, n)),
            "class": jagged(rng.integers(0, 5, n).astype(np.int64)),
        }
    )
    path = tmp_path / "cms.root"
    with uproot.recreate(path) as file:
        file.mktree(
            "evt_tree",
            {"truth": truth.type.content, "eventNumber": np.int32},
            field_name=lambda outer, inner: f"{outer}_{inner}",
            counter_name=lambda counted: f"n{counted}",
        ).extend({"truth": truth, "eventNumber": np.array([7, 8, 9, 10], dtype=np.int32)})

    back = read_events(path)
    assert back.event_number.tolist() == [7, 8, 9, 10]
    assert ak.num(back.gen).tolist() == [3, 0, 5, 2]
    np.testing.assert_allclose(ak.flatten(back.gen.pt), ak.flatten(truth.pt).to_numpy().astype(np.float32))
    assert ak.flatten(back.gen["class"]).tolist() == ak.flatten(truth["class"]).tolist()
    assert back.gen.vz.type.content.content.primitive == "float32"


def test_iter_events_chunks(tmp_path):
    events = random_events(25, seed=6)
    path = tmp_path / "events.root"
    write_events(events, path)

    chunks = list(iter_events(path, step_size=7))
    assert [len(c) for c in chunks] == [7, 7, 7, 4]
    assert_same_events(ak.concatenate(chunks), events)

    part = read_events(path, entry_start=5, entry_stop=12)
    assert_same_events(part, events[5:12])


def test_event_writer_streams_chunks(tmp_path):
    events = random_events(30, seed=7)
    path = tmp_path / "stream.root"
    with EventWriter(path) as writer:
        for start in range(0, 30, 8):
            writer.write(events[start : start + 8])
            assert not path.exists()
    assert writer.events_written == 30
    assert_same_events(read_events(path), events)


def test_event_writer_exception_leaves_no_file(tmp_path):
    events = random_events(10, seed=8)
    path = tmp_path / "broken.root"
    with pytest.raises(RuntimeError):
        with EventWriter(path) as writer:
            writer.write(events)
            raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


def test_changed_layout_between_chunks_is_rejected(tmp_path):
    path = tmp_path / "mixed.root"
    with pytest.raises(InvalidInputError, match="same fields"):
        with EventWriter(path) as writer:
            writer.write(random_events(5, seed=9))
            writer.write(random_events(5, seed=10, with_pfc=False))
    assert list(tmp_path.iterdir()) == []


def test_zero_events_file(tmp_path):
    path = tmp_path / "empty.root"
    write_events(random_events(4, seed=11)[:0], path)
    assert count_events(path) == 0
    assert len(read_events(path)) == 0

    with EventWriter(tmp_path / "nothing.root"):
        pass
    assert count_events(tmp_path / "nothing.root") == 0


def test_high_multiplicity_event_is_read(tmp_path):
    """Events above the card's maximum multiplicity (400) are the card's business, not the reader's."""
    rng = np.random.default_rng(12)
    counts = np.array([650, 3])
    from helpers_io import random_particles

    events = ev.make_events(random_particles(rng, counts), random_particles(rng, counts))
    path = tmp_path / "big.root"
    write_events(events, path)
    back = read_events(path)
    assert ak.num(back.gen).tolist() == [650, 3]


def test_report_counts_events(tmp_path):
    path = tmp_path / "events.root"
    write_events(random_events(9, seed=13), path)
    report = InputReport(str(path))
    read_events(path, report=report)
    assert report.events == 9
    assert report.corrections == 0
