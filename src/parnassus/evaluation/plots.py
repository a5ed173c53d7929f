"""Plots of the evaluation (PNG, CMS style of mplhep, matplotlib's Agg backend).

- grids of normalised histograms: one row per process, one column per observable,
  the reference filled, each sample as a line, GEN dashed where it applies
  (the layout of the figures of arXiv:2503.19981);
- violin plots as in its Figure 2: the relative HT residual and the relative
  leading-jet C2 residual per sample, beside the PFC class frequencies;
- violins of the relative pT residual of matched particles per GEN class;
- class confusion matrices of matched particles (GEN class in rows, PFC class in
  columns, each row normalised to unity) with the class frequencies;
- an event display as in its Figure 1: the eta-phi plane with GEN and PFC markers
  per class, marker area growing with pT, the two leading jets as circles.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from parnassus.core.events import N_CLASSES, ParticleClass
from parnassus.evaluation.jets import JET_RADIUS
from parnassus.evaluation.observables import CLASS_NAMES, describe
from parnassus.exceptions import MissingDependencyError

log = logging.getLogger(__name__)

REFERENCE_COLOR = "#3f90da"
SAMPLE_COLORS = ("#bd1f01", "#832db6", "#94a4a2", "#ffa90e", "#a96b59", "#e76300", "#b9ac70", "#717581")
GEN_COLOR = "black"
CLASS_COLORS = ("#3f90da", "#ffa90e", "#bd1f01", "#94a4a2", "#832db6")
CLASS_SHORT_LABELS = ("ch. had", "e", r"$\mu$", "nu. had", r"$\gamma$")

N_BINS = 50

#: Quantiles of the reference that bound the histogram range of spectra and of residuals.
SPECTRUM_QUANTILES = (0.001, 0.999)
RESIDUAL_QUANTILES = (0.01, 0.99)

#: Violins are drawn from at most this many values (a random subset).
VIOLIN_MAX_VALUES = 5_000

#: The per-class pT residuals have long tails from loose matches: their violins show the central 90 %.
CLASS_VIOLIN_QUANTILES = (0.05, 0.95)

_RC = {
    "font.size": 11,
    "axes.labelsize": 11,
    "axes.titlesize": 11,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "figure.dpi": 80,
    "xtick.minor.visible": False,
    "ytick.minor.visible": False,
}


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import mplhep
    except ImportError as error:
        raise MissingDependencyError(
            f"the evaluation plots need matplotlib and mplhep ({error}); install them with "
            "`pip install 'parnassus[evaluation]'`"
        ) from error
    return plt, mplhep


def _style():
    plt, mplhep = _pyplot()
    return plt.style.context([mplhep.style.CMS, _RC])


def sample_colors(names) -> dict[str, str]:
    return {name: SAMPLE_COLORS[i % len(SAMPLE_COLORS)] for i, name in enumerate(names)}


def histogram_edges(key: str, reference: np.ndarray, others: list[np.ndarray], gen: np.ndarray | None = None) -> np.ndarray:
    """Return bin edges: unit bins for counts, otherwise a quantile range of the reference (and of GEN, when drawn).

    phi spectra always span (-pi, pi]. Samples fall back to the range of the others
    when the reference has no value.
    """
    observable = describe(key)
    if key.endswith("/phi") and not observable.group.endswith("_residual"):
        return np.linspace(-np.pi, np.pi, N_BINS + 1)

    pools = [reference] if len(reference) else [o for o in others if len(o)]
    if gen is not None and len(gen):
        pools.append(gen)
    quantiles = RESIDUAL_QUANTILES if observable.group.endswith("_residual") else SPECTRUM_QUANTILES
    ranges = np.array([np.quantile(pool, quantiles) for pool in pools]) if pools else np.zeros((1, 2))
    low, high = ranges[:, 0].min(), ranges[:, 1].max()

    if observable.discrete:
        low, high = np.floor(low), np.ceil(high)
        step = max(1.0, np.ceil((high - low + 1) / N_BINS))
        return np.arange(low - 0.5, high + 0.5 + step, step)
    if not high > low:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, N_BINS + 1)


def _density(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts, _ = np.histogram(values, bins=edges)
    total = counts.sum()
    if total == 0:
        return np.zeros(len(edges) - 1)
    return counts / (total * np.diff(edges))


def _grid_layout(figure, width: float, height: float) -> None:
    """Fixed margins in inches (faster than tight_layout), with a band at the top for the legend."""
    figure.subplots_adjust(
        left=0.95 / width,
        right=1 - 0.15 / width,
        bottom=0.7 / height,
        top=1 - 0.45 / height,
        wspace=0.38,
        hspace=0.5,
    )


def plot_grid(results, keys: list[str], path: Path, with_gen: bool = False) -> None:
    """Draw normalised histograms of ``keys`` (columns) for every process (rows) into ``path``."""
    plt, _ = _pyplot()
    names = list(results[0].samples)
    colors = sample_colors(names)
    width, height = 3.6 * len(keys), 3.0 * len(results) + 0.45
    with _style():
        figure, axes = plt.subplots(len(results), len(keys), figsize=(width, height), squeeze=False)
        for row, result in enumerate(results):
            for column, key in enumerate(keys):
                axis = axes[row, column]
                reference = result.reference.data.get(key, np.empty(0))
                samples = {name: result.samples[name].data.get(key, np.empty(0)) for name in names}
                gen = result.gen.data.get(key) if with_gen else None
                edges = histogram_edges(key, reference, list(samples.values()), gen)

                # Axes.stairs draws the same step histograms as mplhep.histplot, several times faster.
                axis.stairs(_density(reference, edges), edges, fill=True, color=REFERENCE_COLOR, alpha=0.5, label="reference")
                if gen is not None:
                    axis.stairs(_density(gen, edges), edges, color=GEN_COLOR, linestyle="--", linewidth=1.5, label="GEN")
                for name, values in samples.items():
                    axis.stairs(_density(values, edges), edges, color=colors[name], linewidth=1.5, label=name)

                observable = describe(key)
                axis.set_xlabel(observable.label)
                if observable.log_y and len(reference):
                    axis.set_yscale("log")
                if column == 0:
                    axis.set_ylabel(f"{result.process}: normalised")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="upper center", ncol=len(labels), frameon=False)
        _grid_layout(figure, width, height)
        figure.savefig(path)
        plt.close(figure)


def _violin(axis, data: list[np.ndarray], labels: list[str], colors: list[str], quantiles=RESIDUAL_QUANTILES) -> None:
    """Draw one violin per array, clipped to the pooled quantile range so long tails do not flatten them."""
    pooled = np.concatenate([d for d in data if len(d)] or [np.zeros(1)])
    low, high = np.quantile(pooled, quantiles)
    shown, positions, used_colors, used_labels = [], [], [], []
    rng = np.random.default_rng(0)
    for position, (values, label, color) in enumerate(zip(data, labels, colors)):
        values = values[(values >= low) & (values <= high)]
        if len(values) < 2:
            continue
        if len(values) > VIOLIN_MAX_VALUES:
            # The kernel density estimate costs O(values x points); a random subset draws the same shape.
            values = rng.choice(values, VIOLIN_MAX_VALUES, replace=False)
        shown.append(values)
        positions.append(position)
        used_colors.append(color)
        used_labels.append(label)
    if shown:
        parts = axis.violinplot(shown, positions=positions, showmedians=True, showextrema=False)
        for body, color in zip(parts["bodies"], used_colors):
            body.set_facecolor(color)
            body.set_edgecolor(color)
            body.set_alpha(0.6)
    axis.set_xticks(range(len(labels)))
    axis.set_xticklabels(labels, rotation=30, ha="right")
    axis.axhline(0.0, color="grey", linewidth=0.8, linestyle=":")


def plot_summary(results, path: Path) -> None:
    """Draw the three-panel summary of arXiv:2503.19981 Figure 2 for every process (rows).

    (a) violins of the relative HT residual, (b) violins of the relative leading-jet C2
    residual, (c) PFC class frequencies, for the reference and each sample.
    """
    plt, _ = _pyplot()
    names = list(results[0].samples)
    colors = [REFERENCE_COLOR] + list(sample_colors(names).values())
    labels = ["reference"] + names
    with _style():
        figure, axes = plt.subplots(len(results), 3, figsize=(13, 3.8 * len(results)), squeeze=False)
        for row, result in enumerate(results):
            everyone = [result.reference] + [result.samples[name] for name in names]
            for column, key in enumerate(("event_residual/ht", "jet_residual/c2")):
                data = [values.data.get(key, np.empty(0)) for values in everyone]
                _violin(axes[row, column], data, labels, colors)
                axes[row, column].set_ylabel(describe(key).label)
                axes[row, column].set_title(f"{result.process}: ({'ab'[column]})")
            _class_bars(axes[row, 2], everyone, labels, colors, "all")
            axes[row, 2].set_title(f"{result.process}: (c)")
        figure.tight_layout()
        figure.savefig(path)
        plt.close(figure)


def _class_bars(axis, everyone, labels, colors, particle_set: str) -> None:
    width = 0.8 / len(everyone)
    any_positive = False
    for position, (values, label, color) in enumerate(zip(everyone, labels, colors)):
        counts = values.class_counts.get(particle_set, np.zeros(N_CLASSES))
        fractions = counts / counts.sum() if counts.sum() else counts.astype(float)
        any_positive |= bool(np.any(fractions > 0))
        axis.bar(np.arange(N_CLASSES) + (position - (len(everyone) - 1) / 2) * width, fractions, width, color=color, label=label)
    axis.set_xticks(range(N_CLASSES))
    axis.set_xticklabels(CLASS_SHORT_LABELS)
    if any_positive:
        # Electrons and muons are a few per cent of the PFCs: a log scale keeps them visible.
        axis.set_yscale("log")
    axis.set_ylabel("PFC class fraction")
    axis.legend(loc="best")


def plot_class_violins(results, path: Path) -> None:
    """Draw violins of the relative pT residual of matched particles, one panel per GEN class and process."""
    plt, _ = _pyplot()
    names = list(results[0].samples)
    colors = [REFERENCE_COLOR] + list(sample_colors(names).values())
    labels = ["reference"] + names
    with _style():
        figure, axes = plt.subplots(len(results), N_CLASSES, figsize=(3.4 * N_CLASSES, 3.6 * len(results)), squeeze=False)
        for row, result in enumerate(results):
            everyone = [result.reference] + [result.samples[name] for name in names]
            for particle_class in ParticleClass:
                key = f"class_residual/{CLASS_NAMES[particle_class]}/pt"
                axis = axes[row, particle_class]
                data = [values.data.get(key, np.empty(0)) for values in everyone]
                _violin(axis, data, labels, colors, quantiles=CLASS_VIOLIN_QUANTILES)
                axis.set_title(f"{result.process}: GEN {particle_class.label}")
                if particle_class == 0:
                    axis.set_ylabel(r"$p_T$: (PFC $-$ GEN) / GEN")
        figure.tight_layout()
        figure.savefig(path)
        plt.close(figure)


def plot_confusion(results, particle_set: str, path: Path) -> None:
    """Draw row-normalised class confusion matrices (reference and samples) and class frequencies per process."""
    plt, _ = _pyplot()
    names = list(results[0].samples)
    labels = ["reference"] + names
    colors = [REFERENCE_COLOR] + list(sample_colors(names).values())
    columns = len(labels) + 1
    with _style():
        figure, axes = plt.subplots(len(results), columns, figsize=(3.6 * columns, 3.6 * len(results)), squeeze=False)
        for row, result in enumerate(results):
            everyone = [result.reference] + [result.samples[name] for name in names]
            for column, (values, label) in enumerate(zip(everyone, labels)):
                counts = values.confusion.get(particle_set, np.zeros((N_CLASSES, N_CLASSES)))
                totals = counts.sum(axis=1, keepdims=True)
                fractions = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
                axis = axes[row, column]
                axis.imshow(fractions, vmin=0, vmax=1, cmap="Blues")
                for i in range(N_CLASSES):
                    for j in range(N_CLASSES):
                        axis.text(j, i, f"{fractions[i, j]:.2f}", ha="center", va="center", fontsize=7,
                                  color="white" if fractions[i, j] > 0.6 else "black")
                axis.set_xticks(range(N_CLASSES))
                axis.set_yticks(range(N_CLASSES))
                axis.set_xticklabels(CLASS_SHORT_LABELS)
                axis.set_yticklabels(CLASS_SHORT_LABELS)
                axis.minorticks_off()
                axis.set_xlabel("PFC class")
                axis.set_ylabel("GEN class")
                axis.set_title(f"{result.process}: {label}")
            frequency_set = particle_set if particle_set in result.reference.class_counts else "all"
            _class_bars(axes[row, -1], everyone, labels, colors, frequency_set)
        figure.tight_layout()
        figure.savefig(path)
        plt.close(figure)


def plot_event_display(result, path: Path, abs_eta_max: float, training_abs_eta_max: float) -> None:
    """Draw the first event of a process in the eta-phi plane, one panel per PFC source, GEN in each."""
    from parnassus.evaluation.jets import cluster_jets

    plt, _ = _pyplot()
    sources = list(result.display)
    with _style():
        figure, axes = plt.subplots(1, len(sources), figsize=(5.0 * len(sources), 4.6), squeeze=False)
        for axis, name in zip(axes[0], sources):
            events = result.display[name]
            if len(events) == 0:
                continue
            event = events[0]
            _draw_particles(axis, event.gen, filled=False)
            _draw_particles(axis, event.pfc, filled=True)
            for particles, style in ((events.gen, "--"), (events.pfc, ":")):
                jets = cluster_jets(particles, pt_min=0.0)
                for eta, phi in zip(jets.eta[0][:2].to_list(), jets.phi[0][:2].to_list()):
                    axis.add_patch(plt.Circle((eta, phi), JET_RADIUS, fill=False, linestyle=style, color="black"))
            for eta in (-training_abs_eta_max, training_abs_eta_max):
                axis.axvline(eta, color="grey", linestyle="--", linewidth=0.8)
            for eta in (-abs_eta_max, abs_eta_max):
                axis.axvline(eta, color="grey", linestyle=":", linewidth=0.8)
            axis.set_xlim(-3.0, 3.0)
            axis.set_ylim(-np.pi, np.pi)
            axis.set_xlabel(r"$\eta$")
            axis.set_ylabel(r"$\phi$ [rad]")
            axis.set_title(f"{result.process}: {name}, event {int(event.event_number)}")
        handles = [
            plt.Line2D([], [], marker="o", linestyle="", color=color, label=label)
            for color, label in zip(CLASS_COLORS, CLASS_SHORT_LABELS)
        ]
        handles.append(plt.Line2D([], [], marker="o", linestyle="", markerfacecolor="none", color="black", label="GEN"))
        axes[0, 0].legend(handles=handles, loc="upper left", fontsize=7, ncol=2)
        figure.tight_layout()
        figure.savefig(path)
        plt.close(figure)


def _draw_particles(axis, particles, filled: bool) -> None:
    pt = np.asarray(particles.pt.to_list(), dtype=np.float64)
    eta = np.asarray(particles.eta.to_list(), dtype=np.float64)
    phi = np.asarray(particles.phi.to_list(), dtype=np.float64)
    classes = np.asarray(particles["class"].to_list(), dtype=np.int64)
    # Marker area grows with pT, bounded so soft particles stay visible and hard ones do not cover the plot.
    size = np.clip(4.0 + 6.0 * pt, 4.0, 400.0)
    for particle_class in range(N_CLASSES):
        selected = classes == particle_class
        if not selected.any():
            continue
        color = CLASS_COLORS[particle_class]
        if filled:
            axis.scatter(eta[selected], phi[selected], s=size[selected], color=color, alpha=0.6, linewidths=0)
        else:
            axis.scatter(eta[selected], phi[selected], s=size[selected] * 1.8, facecolors="none", edgecolors=color, linewidths=0.8)
