"""Tests of `parnassus evaluate` on toy events written to ROOT and Parquet files."""

import json

import awkward as ak
import numpy as np
import pytest

from parnassus.cli import main
from parnassus.commands.evaluate_command import plan_files
from parnassus.core import events as ev
from parnassus.core.plugins import hookimpl, plugin_manager
from parnassus.core.io import write_events
from parnassus.evaluation.synthetic import ToyDetector, toy_events
from parnassus.exceptions import InvalidInputError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

EXPECTED_PLOTS = [
    "summary.png",
    "event.png",
    "event_classes.png",
    "event_residual.png",
    "jet.png",
    "jet_residual.png",
    "particle_all.png",
    "particle_in_jets.png",
    "particle_out_of_jets.png",
    "particle_residual_all.png",
    "particle_residual_in_jets.png",
    "particle_residual_out_of_jets.png",
    "unmatched.png",
    "class_residuals.png",
    "confusion_all.png",
    "confusion_in_jets.png",
    "confusion_out_of_jets.png",
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("evaluate")
    paths = {}
    for process, gen_seed in (("ttbar", 0), ("qcd", 7)):
        paths[f"{process}/reference"] = folder / f"{process}_full.root"
        paths[f"{process}/flow"] = folder / f"{process}_flow.parquet"
        paths[f"{process}/smearing"] = folder / f"{process}_smearing.root"
        write_events(toy_events(60, gen_seed, 1), paths[f"{process}/reference"])
        write_events(toy_events(60, gen_seed, 2), paths[f"{process}/flow"])
        write_events(toy_events(60, gen_seed, 3, ToyDetector(pt_scale=1.05)), paths[f"{process}/smearing"])
    return folder, paths


def test_evaluate_writes_report(files, tmp_path):
    _, paths = files
    output = tmp_path / "report"
    code = main([
        "evaluate",
        "--reference", f"ttbar={paths['ttbar/reference']}",
        "--reference", f"qcd={paths['qcd/reference']}",
        "--sample", f"flow:ttbar={paths['ttbar/flow']}",
        "--sample", f"flow:qcd={paths['qcd/flow']}",
        "--sample", f"smearing:ttbar={paths['ttbar/smearing']}",
        "--sample", f"smearing:qcd={paths['qcd/smearing']}",
        "--detector", "cmslike",
        "--bootstrap", "3",
        "-o", str(output),
    ])
    assert code == 0

    for name in ("index.html", "distances.md", "distances.csv", "distances.json", "summary.json"):
        assert (output / name).stat().st_size > 0, name
    for name in EXPECTED_PLOTS + ["event_display_ttbar.png", "event_display_qcd.png"]:
        path = output / "plots" / name
        assert path.stat().st_size > 1000, name
        assert path.read_bytes()[:8] == PNG_SIGNATURE, name

    index = (output / "index.html").read_text()
    for name in EXPECTED_PLOTS:
        assert f'src="plots/{name}"' in index
    assert "<td><code>event/ht</code></td>" in index

    distances = json.loads((output / "distances.json").read_text())
    assert set(distances["scores"]) == {"flow", "smearing"}
    assert set(distances["scores"]["flow"]) == {"ttbar", "qcd", "all"}
    assert "event_residual/ht" in distances["processes"]["qcd"]["distances"]["smearing"]

    summary = json.loads((output / "summary.json").read_text())
    assert summary["processes"]["ttbar"]["n_events"] == 60
    assert summary["settings"]["abs_eta_max"] == 2.5
    assert not list(tmp_path.glob(".report.partial-*"))


class PhotonHT:
    """A plugin observable: the scalar pT sum of PFC photons per event (GeV)."""

    @hookimpl
    def parnassus_observables(self, events, card):
        photons = events.pfc[events.pfc["class"] == 4]
        return {"photon_ht": ak.to_numpy(ak.sum(photons.pt, axis=1)).astype(np.float64)}


def test_evaluate_single_process_max_events_and_plugin(files, tmp_path):
    _, paths = files
    output = tmp_path / "single"
    plugin = PhotonHT()
    plugin_manager().register(plugin, name="test-photon-ht")
    try:
        code = main([
            "evaluate",
            "--reference", str(paths["ttbar/reference"]),
            "--sample", f"flow={paths['ttbar/flow']}",
            "--process", "ttbar",
            "--max-events", "30",
            "--bootstrap", "0",
            "-o", str(output),
        ])
    finally:
        plugin_manager().unregister(plugin)
    assert code == 0
    summary = json.loads((output / "summary.json").read_text())
    assert summary["processes"]["ttbar"]["n_events"] == 30

    distances = json.loads((output / "distances.json").read_text())
    assert distances["processes"]["ttbar"]["distances"]["flow"]["extra/photon_ht"]["value"] >= 0
    assert (output / "plots" / "extra.png").read_bytes()[:8] == PNG_SIGNATURE

    # An existing report is kept unless --overwrite is given.
    assert main(["evaluate", "--reference", str(paths["ttbar/reference"]), "--sample", f"flow={paths['ttbar/flow']}", "-o", str(output)]) == 1


def test_evaluate_names_missing_events(files, tmp_path, caplog):
    folder, paths = files
    reference = toy_events(60, 0, 1)
    partial = ev.make_events(reference.gen[5:], reference.pfc[5:], reference.event_number[5:])
    partial_path = folder / "partial.parquet"
    write_events(partial, partial_path)

    output = tmp_path / "report"
    code = main(["evaluate", "--reference", str(paths["ttbar/reference"]), "--sample", f"flow={partial_path}", "-o", str(output)])
    assert code == 1
    assert "lacks 5 events of the reference (event numbers 1000, 1001, 1002, 1003, 1004)" in caplog.text
    assert not output.exists()


def test_plan_files_rules(files):
    _, paths = files
    reference, flow = str(paths["ttbar/reference"]), str(paths["ttbar/flow"])
    plan = plan_files([reference], [f"flow={flow}"], process=None)
    assert list(plan.references) == ["ttbar_full"]
    assert plan.samples["ttbar_full"]["flow"].name == "ttbar_flow.parquet"

    with pytest.raises(InvalidInputError, match="with several references write PROCESS=PATH"):
        plan_files([reference, f"qcd={reference}"], [f"flow={flow}"])
    with pytest.raises(InvalidInputError, match="names no process"):
        plan_files([f"a={reference}", f"b={reference}"], [f"flow={flow}"])
    with pytest.raises(InvalidInputError, match="missing: flow:b"):
        plan_files([f"a={reference}", f"b={reference}"], [f"flow:a={flow}"])
    with pytest.raises(InvalidInputError, match="reserved"):
        plan_files([reference], [f"reference={flow}"])
    with pytest.raises(InvalidInputError, match="has no name"):
        plan_files([reference], [flow])
    with pytest.raises(InvalidInputError, match="not found"):
        plan_files([reference], ["flow=/nonexistent/file.root"])
    with pytest.raises(InvalidInputError, match="which has no --reference"):
        plan_files([f"a={reference}"], [f"flow:b={flow}"])


def test_evaluate_rejects_gen_only_sample(files, tmp_path, caplog):
    folder, paths = files
    gen_only = folder / "gen_only.parquet"
    reference = toy_events(60, 0, 1)
    write_events(ev.make_events(reference.gen, None, reference.event_number), gen_only)
    code = main(["evaluate", "--reference", str(paths["ttbar/reference"]), "--sample", f"flow={gen_only}", "-o", str(tmp_path / "r")])
    assert code == 1
    assert "gen_only.parquet" in caplog.text


def test_evaluate_truncated_gen_matches_reference(tmp_path):
    """A model's GEN input is truncated to the card's maximum; evaluate compares it after the same truncation."""
    import awkward as ak

    from parnassus.cli import main
    from parnassus.core import events as ev
    from parnassus.core.detector import DetectorCard
    from parnassus.core.io import write_events
    from parnassus.core.plugins import load_detector
    from parnassus.evaluation.synthetic import toy_events

    reference = toy_events(40, gen_seed=5)
    card = load_detector("cmslike")
    small_card = DetectorCard("small", "small", max_particles=card.max_particles)
    # Pile extra soft GEN particles onto one event so it exceeds the maximum.
    gen = reference.gen
    extra = ak.concatenate([gen[:1]] * (card.max_particles // max(1, len(gen[0])) + 2), axis=1)
    gen = ak.concatenate([extra, gen[1:]], axis=0)
    reference = ev.make_events(gen, reference.pfc, reference.event_number)
    assert len(reference.gen[0]) > card.max_particles

    truncated, _ = small_card.preprocess(ev.make_events(reference.gen, reference.pfc, reference.event_number))
    write_events(reference, tmp_path / "reference.parquet")
    write_events(truncated, tmp_path / "sample.parquet")
    code = main(["evaluate", "--reference", f"ttbar={tmp_path / 'reference.parquet'}",
                 "--sample", f"model={tmp_path / 'sample.parquet'}", "--bootstrap", "2", "-o", str(tmp_path / "report")])
    assert code == 0
    assert (tmp_path / "report" / "distances.md").is_file()
