"""Parquet: awkward's layout, one row group per written chunk, streamed back by row group."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pyarrow.parquet as pq
import pytest

from helpers_io import assert_same_events, random_events
from parnassus.core.io import EventWriter, count_events, iter_events, read_events, write_events
from parnassus.exceptions import InvalidInputError


def test_round_trip(tmp_path):
    events = random_events(33, seed=21, with_pdgid=True)
    path = tmp_path / "events.parquet"
    write_events(events, path)

    assert count_events(path) == 33
    back = read_events(path)
    assert_same_events(back, events)
    assert str(back.type) == str(events.type)


def test_plain_awkward_reads_the_file(tmp_path):
    events = random_events(10, seed=22)
    path = tmp_path / "events.parquet"
    write_events(events, path)
    plain = ak.from_parquet(path)
    assert ak.fields(plain) == ["gen", "pfc", "event_number"]
    assert plain.gen.pt.tolist() == events.gen.pt.tolist()


def test_row_groups_follow_written_chunks(tmp_path):
    events = random_events(25, seed=23)
    path = tmp_path / "events.parquet"
    with EventWriter(path) as writer:
        for start in range(0, 25, 10):
            writer.write(events[start : start + 10])

    metadata = pq.ParquetFile(path).metadata
    assert metadata.num_row_groups == 3
    assert [metadata.row_group(i).num_rows for i in range(3)] == [10, 10, 5]
    assert_same_events(read_events(path), events)


def test_iter_events_streams_row_groups(tmp_path, monkeypatch):
    events = random_events(40, seed=24)
    path = tmp_path / "events.parquet"
    with EventWriter(path) as writer:
        for start in range(0, 40, 10):
            writer.write(events[start : start + 10])

    calls = []
    original = ak.from_parquet

    def recording_from_parquet(*args, **kwargs):
        calls.append(kwargs.get("row_groups"))
        return original(*args, **kwargs)

    monkeypatch.setattr(ak, "from_parquet", recording_from_parquet)
    chunks = iter_events(path, step_size=10)
    first = next(chunks)
    assert len(first) == 10
    assert calls == [[0]]

    rest = list(chunks)
    assert calls == [[0], [1], [2], [3]]
    assert_same_events(ak.concatenate([first, *rest]), events)


def test_chunks_span_row_groups(tmp_path):
    events = random_events(30, seed=25)
    path = tmp_path / "events.parquet"
    with EventWriter(path) as writer:
        for start in range(0, 30, 10):
            writer.write(events[start : start + 10])

    chunks = list(iter_events(path, step_size=7))
    assert [len(c) for c in chunks] == [7, 7, 7, 7, 2]
    assert_same_events(ak.concatenate(chunks), events)

    part = read_events(path, entry_start=8, entry_stop=23)
    assert_same_events(part, events[8:23])


def test_foreign_dtypes_are_converted(tmp_path):
    """A Parquet file made without parnassus, with float64 kinematics and int64 classes."""
    gen = ak.zip(
        {
            "pt": [[1.5, 2.5], [3.5]],
            "eta": [[0.1, -0.2], [1.0]],
            "phi": [[0.5, -0.5], [3.0]],
            "vx": [[0.0, 0.0], [0.1]],
            "vy": [[0.0, 0.0], [0.1]],
            "vz": [[1.0, 1.0], [-2.0]],
            "class": [[0, 4], [2]],
        }
    )
    path = tmp_path / "foreign.parquet"
    ak.to_parquet(ak.zip({"gen": gen}, depth_limit=1), path)

    back = read_events(path)
    assert back.event_number.tolist() == [0, 1]
    assert back.gen.pt.type.content.content.primitive == "float32"
    assert back.gen["class"].tolist() == [[0, 4], [2]]


def test_missing_gen_field(tmp_path):
    path = tmp_path / "other.parquet"
    ak.to_parquet(ak.Array([{"jets": [1.0, 2.0]}]), path)
    with pytest.raises(InvalidInputError, match="field 'gen' not found .*jets"):
        read_events(path)


def test_missing_particle_field(tmp_path):
    events = random_events(3, seed=26, with_pfc=False)
    gen = ak.zip({name: events.gen[name] for name in ("pt", "eta", "phi", "vx", "vy", "vz")})
    path = tmp_path / "noclass.parquet"
    ak.to_parquet(ak.zip({"gen": gen}, depth_limit=1), path)
    with pytest.raises(InvalidInputError, match=r"field 'gen.class' not found .*pt, eta, phi"):
        read_events(path)


def test_require_pfc(tmp_path):
    path = tmp_path / "gen.parquet"
    write_events(random_events(3, seed=27, with_pfc=False), path)
    assert ak.fields(read_events(path)) == ["gen", "event_number"]
    with pytest.raises(InvalidInputError, match="'pfc' not found"):
        read_events(path, require_pfc=True)


def test_nan_in_parquet_names_field_and_event(tmp_path):
    events = random_events(6, seed=28)
    eta = ak.to_numpy(ak.flatten(events.pfc.eta)).copy()
    counts = ak.num(events.pfc)
    first_of_event_4 = int(np.sum(counts[:4]))
    assert counts[4] > 0
    eta[first_of_event_4] = np.nan
    pfc = ak.with_field(events.pfc, ak.unflatten(eta, counts), "eta")
    path = tmp_path / "nan.parquet"
    ak.to_parquet(ak.with_field(events, pfc, "pfc"), path)

    with pytest.raises(InvalidInputError, match=r"field 'pfc.eta' .* NaN .*entry 4 \(event number 1012\)"):
        read_events(path)
