"""The report folder: plots, distance tables, a JSON summary and an index.html that shows them.

Layout of the folder::

    index.html          every plot and the distance table, readable offline
    distances.md        the distance table (Markdown), with the scores
    distances.csv       the same table, one row per (process, observable)
    distances.json      floors, distances, uncertainties, ratios and scores
    summary.json        settings, event counts, matching efficiencies, class counts, confusion matrices
    plots/*.png         the figures

The folder is written under a temporary name beside the target and renamed when
complete, so an interrupted evaluation never leaves a report that looks finished.
(:func:`parnassus.core.io.atomic.atomic_output` cannot replace a non-empty folder,
hence the rename here.)
"""

from __future__ import annotations

import html
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from parnassus.evaluation import plots
from parnassus.evaluation.metrics import json_safe, scores, table_rows, write_tables
from parnassus.evaluation.observables import CLASS_KEYS, EVENT_FEATURES, JET_FEATURES, PARTICLE_FEATURES, PARTICLE_SETS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Figure:
    """One PNG of the report."""

    filename: str
    title: str
    caption: str


def _keys_present(results, keys: list[str]) -> list[str]:
    return [key for key in keys if any(key in result.reference.data for result in results)]


def grid_specs(results) -> list[tuple[Figure, list[str], bool]]:
    """Return (figure, observable keys, draw GEN) for every histogram grid of the report."""
    specs = [
        (Figure("event.png", "Event quantities", "Event-level observables, normalised to unity; GEN dashed."),
         [f"event/{k}" for k in EVENT_FEATURES], True),
        (Figure("event_classes.png", "Multiplicity per class", "Number of particles of each class per event; GEN dashed."),
         [f"event/{k}" for k in CLASS_KEYS], True),
        (Figure("event_residual.png", "Event residuals", "PFC minus GEN for counts, (PFC minus GEN) / GEN for HT and MET."),
         [f"event_residual/{k}" for k in EVENT_FEATURES], False),
        (Figure("jet.png", "Jets", "Anti-kt R = 0.5 jets (all jets), C2 and D2 of the leading jet; GEN dashed."),
         [f"jet/{k}" for k in JET_FEATURES], True),
        (Figure("jet_residual.png", "Jet residuals", "PFC jets matched to GEN jets (Delta R < 0.2); C2, D2: leading GEN jet and its match."),
         [f"jet_residual/{k}" for k in JET_FEATURES], False),
    ]
    for particle_set in PARTICLE_SETS:
        readable = particle_set.replace("_", " ")
        specs.append((
            Figure(f"particle_{particle_set}.png", f"Particles ({readable})", f"PFC spectra, {readable}; GEN dashed."),
            [f"particle/{particle_set}/{k}" for k in PARTICLE_FEATURES], True,
        ))
        specs.append((
            Figure(f"particle_residual_{particle_set}.png", f"Particle residuals ({readable})",
                   f"PFCs matched to GEN particles (Delta R < 0.6), {readable}."),
            [f"particle_residual/{particle_set}/{k}" for k in PARTICLE_FEATURES], False,
        ))
    specs.append((
        Figure("unmatched.png", "Unmatched PFCs", "PFCs without a GEN match (fakes, pileup, split deposits): count per event and spectra."),
        ["unmatched/n"] + [f"unmatched/{k}" for k in PARTICLE_FEATURES], False,
    ))
    extra = sorted({key for result in results for key in result.reference.data if key.startswith("extra/")})
    if extra:
        specs.append((Figure("extra.png", "Plugin observables", "Observables added by parnassus_observables hooks."), extra, False))
    return [(figure, _keys_present(results, keys), with_gen) for figure, keys, with_gen in specs if _keys_present(results, keys)]


def make_plots(results, folder: Path, abs_eta_max: float, training_abs_eta_max: float) -> list[Figure]:
    """Draw every figure into ``folder`` and return them in the order of the report."""
    folder.mkdir(parents=True, exist_ok=True)
    figures = []

    summary = Figure("summary.png", "Summary (as arXiv:2503.19981 Fig. 2)",
                     "(a) relative HT residual, (b) relative leading-jet C2 residual, (c) PFC class fractions.")
    plots.plot_summary(results, folder / summary.filename)
    figures.append(summary)

    for figure, keys, with_gen in grid_specs(results):
        start = time.perf_counter()
        plots.plot_grid(results, keys, folder / figure.filename, with_gen=with_gen)
        log.debug("drew %s in %.1f s", figure.filename, time.perf_counter() - start)
        figures.append(figure)

    violins = Figure("class_residuals.png", "pT residual per class", "Relative pT residual of matched particles, by GEN class (central 90 % of the values).")
    plots.plot_class_violins(results, folder / violins.filename)
    figures.append(violins)

    for particle_set in PARTICLE_SETS:
        readable = particle_set.replace("_", " ")
        confusion = Figure(f"confusion_{particle_set}.png", f"Class confusion ({readable})",
                           "Matched pairs, GEN class in rows, PFC class in columns, rows normalised; PFC class fractions on the right.")
        plots.plot_confusion(results, particle_set, folder / confusion.filename)
        figures.append(confusion)

    for result in results:
        display = Figure(f"event_display_{_safe(result.process)}.png", f"Event display ({result.process})",
                         "GEN open circles, PFC filled, colour by class, area by pT; circles: two leading jets "
                         "(GEN dashed, PFC dotted); lines: |eta| acceptance.")
        plots.plot_event_display(result, folder / display.filename, abs_eta_max, training_abs_eta_max)
        figures.append(display)
    return figures


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def summary_document(results, settings) -> dict:
    """Return the JSON summary: settings, events, timings, efficiencies, class counts, confusion matrices."""
    processes = {}
    for result in results:
        everyone = {"reference": result.reference, **result.samples}
        processes[result.process] = {
            "n_events": result.n_events,
            "seconds": result.seconds,
            "gen_class_counts": {k: v.tolist() for k, v in result.gen.class_counts.items()},
            "samples": {
                name: {
                    "efficiencies": values.summary,
                    "class_counts": {k: v.tolist() for k, v in values.class_counts.items()},
                    "confusion": {k: v.tolist() for k, v in values.confusion.items()},
                }
                for name, values in everyone.items()
            },
        }
    return json_safe({"settings": asdict(settings), "processes": processes})


def _html_table(rows: list[dict], names: list[str]) -> str:
    header = "<tr><th>process</th><th>observable</th><th>floor</th>" + "".join(f"<th>{html.escape(n)}</th>" for n in names) + "</tr>"
    body = []
    for row in rows:
        cells = [html.escape(row["process"]), f"<code>{html.escape(row['observable'])}</code>", _cell(row["floor"], row["floor_uncertainty"])]
        for name in names:
            text = _cell(row[name], row[f"{name}_uncertainty"])
            ratio = row[f"{name}_ratio"]
            if np.isfinite(ratio):
                text += f" ({ratio:.2f})"
            cells.append(text)
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return "<table>\n" + header + "\n" + "\n".join(body) + "\n</table>"


def _cell(value: float, uncertainty: float) -> str:
    if not np.isfinite(value):
        return "n/a"
    return f"{value:.3g} &plusmn; {uncertainty:.2g}" if np.isfinite(uncertainty) else f"{value:.3g}"


def index_html(results, comparisons, figures: list[Figure], settings) -> str:
    """Return the index page: settings, scores, efficiencies, every figure and the distance table."""
    names = list(results[0].samples)
    score_rows = "".join(
        "<tr><td>" + html.escape(name) + "</td>" + "".join(f"<td>{v:.2f}</td>" if np.isfinite(v) else "<td>n/a</td>" for v in per.values()) + "</tr>"
        for name, per in scores(comparisons).items()
    )
    score_header = "<tr><th>sample</th>" + "".join(f"<th>{html.escape(p)}</th>" for p in [r.process for r in results] + ["all"]) + "</tr>"

    efficiency_rows = []
    for result in results:
        for name, values in {"reference": result.reference, **result.samples}.items():
            cells = "".join(f"<td>{values.summary.get(k, float('nan')):.3f}</td>" for k in _efficiency_keys())
            efficiency_rows.append(f"<tr><td>{html.escape(result.process)}</td><td>{html.escape(name)}</td>{cells}</tr>")
    efficiency_header = "<tr><th>process</th><th>sample</th>" + "".join(f"<th>{k}</th>" for k in _efficiency_keys()) + "</tr>"

    sections = "\n".join(
        f'<h3 id="{html.escape(f.filename)}">{html.escape(f.title)}</h3>\n<p>{html.escape(f.caption)}</p>\n'
        f'<img src="plots/{html.escape(f.filename)}" alt="{html.escape(f.title)}">'
        for f in figures
    )
    events = ", ".join(f"{html.escape(r.process)}: {r.n_events}" for r in results)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>parnassus evaluation</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
td, th {{ border: 1px solid #ccc; padding: 2px 6px; text-align: right; }}
img {{ max-width: 100%; }}
</style>
</head>
<body>
<h1>parnassus evaluation</h1>
<p>Detector card: {html.escape(settings.detector or "not given")}. Events per process: {events}. Acceptance |&eta;| &lt; {settings.abs_eta_max}; anti-kt R = 0.5 jets with
p<sub>T</sub> &gt; {settings.jet_pt_min} GeV; {settings.n_bootstrap} bootstrap replicas; seed {settings.seed}.</p>
<h2>Scores</h2>
<p>Median over observables of W1(sample, reference) / floor, where the floor is W1 between two halves of the
reference. Lower is better; a sample statistically identical to the reference scores below 1.</p>
<table>{score_header}{score_rows}</table>
<h2>Matching efficiencies</h2>
<table>{efficiency_header}{''.join(efficiency_rows)}</table>
<h2>Figures</h2>
{sections}
<h2>Distances</h2>
<p>1-Wasserstein distance to the reference &plusmn; bootstrap standard deviation (ratio to the floor), in the
unit of each observable. Also in <a href="distances.md">distances.md</a>, <a href="distances.csv">distances.csv</a>
and <a href="distances.json">distances.json</a>.</p>
{_html_table(table_rows(comparisons), names)}
</body>
</html>
"""


def _efficiency_keys() -> list[str]:
    return ["jet_match_efficiency"] + [f"particle_match_efficiency/{s}" for s in PARTICLE_SETS]


def write_report(results, settings, output: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write the report folder atomically and return its path.

    Args:
        results: the :class:`~parnassus.evaluation.pipeline.ProcessResult` of each process.
        settings: the :class:`~parnassus.evaluation.pipeline.Settings` used.
        output: the report folder.
        overwrite: replace an existing folder (only once the new report is complete).

    Raises:
        FileExistsError: when ``output`` exists and ``overwrite`` is False.
    """
    target = Path(output)
    if target.exists() and not overwrite:
        raise FileExistsError(f"report folder {target} exists; choose another -o or pass --overwrite")
    comparisons = [result.comparison for result in results]

    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        temporary.mkdir()
        log.info("drawing the plots")
        figures = make_plots(results, temporary / "plots", settings.abs_eta_max, settings.training_abs_eta_max)
        write_tables(comparisons, temporary)
        (temporary / "summary.json").write_text(json.dumps(summary_document(results, settings), indent=1) + "\n")
        (temporary / "index.html").write_text(index_html(results, comparisons, figures, settings))

        if target.exists():
            # Keep the previous report until the new one is in place.
            previous = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, previous)
            os.replace(temporary, target)
            shutil.rmtree(previous, ignore_errors=True)
        else:
            os.replace(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise

    for name, per_process in scores(comparisons).items():
        log.info("score of %s: %s", name, ", ".join(f"{p} {v:.2f}" for p, v in per_process.items()))
    log.info("report written to %s", target)
    return target
