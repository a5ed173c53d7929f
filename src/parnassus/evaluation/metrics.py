"""Distances between a sample and the reference, their uncertainties, the statistical floor and the score.

For each observable (a one-dimensional distribution of values):

- distance: the 1-Wasserstein distance W1 between the sample's values and the
  reference's values, W1 = integral |F_sample(x) - F_reference(x)| dx over the
  empirical cumulative distributions (:func:`scipy.stats.wasserstein_distance`),
  in the unit of the observable. Before that, both are clipped (winsorised) to
  the reference's [0.1 %, 99.9 %] quantile range, so a handful of extreme values
  cannot dominate the distance. Such values occur: a soft GEN particle matched to
  a hard PFC has a relative pT residual of 1000;
- uncertainty: the standard deviation of W1 over bootstrap replicas. Sample and
  reference hold the same GEN events, so a replica draws events with replacement
  once and applies the draw to both (a paired bootstrap). All values of an event
  move together, so correlations within an event are kept. The replicas' W1 is
  computed on up to 2000 common bins at the quantiles of the values
  (:class:`BinnedSupport`), which makes all replicas one sparse matrix product;
- floor: W1 between two disjoint random halves of the reference events, averaged
  over several random splits (its uncertainty is the spread over the splits). It
  is the distance that statistical fluctuations alone produce between two sets
  of events half the size;
- ratio: distance / floor; the score of a sample is the median ratio over all
  observables with a positive floor. Lower is better. A sample statistically
  identical to the reference scores below 1: about 1/sqrt(2) from the halved
  sizes alone, and lower still for observables where the shared GEN events make
  sample and reference fluctuate together.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import wasserstein_distance

from parnassus.evaluation.observables import Values

log = logging.getLogger(__name__)

DEFAULT_BOOTSTRAP = 20
DEFAULT_FLOOR_SPLITS = 5

#: Above this many values a distribution is randomly subsampled (by value) before the
#: distances are computed, which bounds the time. The floor uses the same cap.
DEFAULT_MAX_VALUES = 1_000_000

#: Values are clipped to the reference's [q, 1 - q] quantile range before distances are taken.
DEFAULT_CLIP_QUANTILE = 0.001


@dataclass(frozen=True)
class Distance:
    """W1 of one observable for one sample, with its bootstrap uncertainty and the ratio to the floor."""

    value: float
    uncertainty: float
    ratio: float
    n_values: int


@dataclass(frozen=True)
class Floor:
    """W1 between two halves of the reference: mean and spread over random splits."""

    value: float
    uncertainty: float
    n_values: int


class BinnedSupport:
    """Sample and reference values on common bins, for fast bootstrap replicas of W1.

    The merged values are cut into at most ``n_bins`` bins at their quantiles, and each
    bin is represented by the mean of its values c_k. A replica with event weights w
    (how often each event was drawn) has bin contents H_k = sum_events w_e n_ek, with
    n_ek the values of event e in bin k, computed for all replicas at once as a sparse
    matrix product. Its distance is the W1 of the two binned distributions,

        W1_binned = sum_k |U_k - V_k| (c_{k+1} - c_k),

    U_k and V_k being the cumulative bin fractions. With narrow bins it approaches the
    W1 of the values; it serves for the spread of the replicas, not the nominal value.
    """

    def __init__(self, u: np.ndarray, u_events: np.ndarray, v: np.ndarray, v_events: np.ndarray, n_events: int, n_bins: int = 2000):
        from scipy import sparse

        merged = np.concatenate([u, v])
        edges = np.unique(np.quantile(merged, np.linspace(0.0, 1.0, n_bins + 1)))
        n_bins = max(len(edges) - 1, 1)
        u_bins = np.clip(np.searchsorted(edges, u, side="right") - 1, 0, n_bins - 1)
        v_bins = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, n_bins - 1)

        # Bin representatives: the mean value in each bin (empty bins are never weighted).
        all_bins = np.concatenate([u_bins, v_bins])
        sums = np.bincount(all_bins, weights=merged, minlength=n_bins)
        counts = np.bincount(all_bins, minlength=n_bins)
        centres = np.divide(sums, counts, out=np.zeros(n_bins), where=counts > 0)
        occupied = counts > 0
        self.widths = np.diff(centres[occupied])
        self.occupied = occupied

        def counts_matrix(events, bins):
            ones = np.ones(len(events))
            return sparse.csr_matrix((ones, (events, bins)), shape=(n_events, n_bins))

        self.u_counts = counts_matrix(u_events, u_bins)
        self.v_counts = counts_matrix(v_events, v_bins)

    def distances(self, draws: np.ndarray) -> np.ndarray:
        """Return W1_binned for each row of ``draws`` (replicas, events); NaN where a side is empty."""
        u_contents = np.asarray((self.u_counts.T @ draws.T).T)[:, self.occupied]
        v_contents = np.asarray((self.v_counts.T @ draws.T).T)[:, self.occupied]
        u_total = u_contents.sum(axis=1, keepdims=True)
        v_total = v_contents.sum(axis=1, keepdims=True)
        valid = (u_total[:, 0] > 0) & (v_total[:, 0] > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            difference = np.cumsum(u_contents, axis=1) / u_total - np.cumsum(v_contents, axis=1) / v_total
        result = np.abs(difference[:, :-1]) @ self.widths
        return np.where(valid, result, np.nan)


def wasserstein(u: np.ndarray, v: np.ndarray) -> float:
    """Return the 1-Wasserstein distance between two samples of values (NaN when one is empty)."""
    if len(u) == 0 or len(v) == 0:
        return float("nan")
    return float(wasserstein_distance(u, v))


def _capped(values: np.ndarray, event_index: np.ndarray, max_values: int, rng: np.random.Generator):
    if len(values) <= max_values:
        return values, event_index
    keep = np.sort(rng.choice(len(values), size=max_values, replace=False))
    return values[keep], event_index[keep]


def clip_range(reference: np.ndarray, quantile: float) -> tuple[float, float]:
    """Return the reference's [quantile, 1 - quantile] range ((-inf, inf) for quantile 0 or no values)."""
    if quantile <= 0 or len(reference) == 0:
        return -np.inf, np.inf
    low, high = np.quantile(reference, [quantile, 1.0 - quantile])
    return float(low), float(high)


def bootstrap_distance(
    sample: np.ndarray,
    sample_events: np.ndarray,
    reference: np.ndarray,
    reference_events: np.ndarray,
    n_events: int,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> tuple[float, float]:
    """Return W1 between sample and reference values and its paired-bootstrap standard deviation.

    Args:
        sample, reference: float arrays of values.
        sample_events, reference_events: int arrays, the event position of each value;
            position i is the same GEN event on both sides.
        n_events: number of events of each side.
        n_bootstrap: number of replicas; fewer than 2 gives an uncertainty of NaN.
        seed: seed of the resampling.

    Returns:
        (W1, standard deviation of W1 over the replicas).
    """
    nominal = wasserstein(sample, reference)
    if not np.isfinite(nominal) or n_bootstrap < 2:
        return nominal, float("nan")

    rng = np.random.default_rng(seed)
    support = BinnedSupport(sample, sample_events, reference, reference_events, n_events)
    draws = rng.multinomial(n_events, np.full(n_events, 1.0 / n_events), size=n_bootstrap).astype(np.float64)
    replicas = support.distances(draws)

    # A replica that drew no event with a value of this observable has no distribution.
    replicas = replicas[np.isfinite(replicas)]
    if len(replicas) < 2:
        return nominal, float("nan")
    return nominal, float(np.std(replicas, ddof=1))


def statistical_floor(
    values: np.ndarray, event_index: np.ndarray, n_events: int, n_splits: int = DEFAULT_FLOOR_SPLITS, seed: int = 0
) -> Floor:
    """Return W1 between two random disjoint halves of the reference events.

    Args:
        values: float array of the reference values.
        event_index: int array, the event position of each value.
        n_events: number of reference events.
        n_splits: number of random splits averaged.
        seed: seed of the splits.
    """
    if len(values) < 2 or n_events < 2:
        return Floor(float("nan"), float("nan"), len(values))

    # Both halves live on the sorted reference values: a split is two 0/1 weight vectors,
    # so each split costs O(n) instead of a sort.
    order = np.argsort(values, kind="mergesort")
    widths = np.diff(values[order])
    sorted_events = event_index[order]

    rng = np.random.default_rng(seed)
    distances = []
    for _ in range(n_splits):
        first_half = np.zeros(n_events, dtype=bool)
        first_half[rng.permutation(n_events)[: n_events // 2]] = True
        in_first = first_half[sorted_events]
        n_first = in_first.sum()
        if n_first == 0 or n_first == len(values):
            continue
        cdf_first = np.cumsum(in_first)[:-1] / n_first
        cdf_second = np.cumsum(~in_first)[:-1] / (len(values) - n_first)
        distances.append(float(np.sum(np.abs(cdf_first - cdf_second) * widths)))
    if not distances:
        return Floor(float("nan"), float("nan"), len(values))
    spread = float(np.std(distances, ddof=1)) if len(distances) > 1 else float("nan")
    return Floor(float(np.mean(distances)), spread, len(values))


@dataclass
class Comparison:
    """Distances of every sample to the reference for every observable of one process.

    Attributes:
        process: the process name.
        floors: observable key -> :class:`Floor`.
        distances: sample name -> observable key -> :class:`Distance`.
    """

    process: str
    floors: dict[str, Floor]
    distances: dict[str, dict[str, Distance]]

    def score(self, sample: str) -> float:
        """Return the median of distance / floor over the observables with a positive floor."""
        return score([d.ratio for d in self.distances[sample].values()])


def score(ratios) -> float:
    """Return the median of the finite ratios (NaN when there is none)."""
    finite = np.asarray([r for r in ratios if np.isfinite(r)], dtype=np.float64)
    return float(np.median(finite)) if len(finite) else float("nan")


def compare(
    process: str,
    reference: Values,
    samples: dict[str, Values],
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    n_floor_splits: int = DEFAULT_FLOOR_SPLITS,
    max_values: int = DEFAULT_MAX_VALUES,
    clip_quantile: float = DEFAULT_CLIP_QUANTILE,
    seed: int = 0,
) -> Comparison:
    """Compute the floor and the distance of each sample for every observable of the reference.

    Args:
        process: the process name, for the table and the log.
        reference: the reference :class:`Values`.
        samples: sample name -> :class:`Values` of the same events, in the same order.
        n_bootstrap: bootstrap replicas per distance.
        n_floor_splits: random half-splits averaged for the floor.
        max_values: distributions with more values are subsampled to this many.
        clip_quantile: values are clipped to the reference's [q, 1 - q] quantile range
            before any distance; 0 disables the clipping.
        seed: seed of the subsampling, the bootstrap and the splits.

    Raises:
        ValueError: when a sample has another number of events than the reference.
    """
    for name, values in samples.items():
        if values.n_events != reference.n_events:
            raise ValueError(f"sample {name!r} has {values.n_events} events, the reference {reference.n_events}")

    rng = np.random.default_rng(seed)
    floors: dict[str, Floor] = {}
    distances: dict[str, dict[str, Distance]] = {name: {} for name in samples}

    for position, key in enumerate(sorted(reference.data)):
        reference_values, reference_events = _capped(reference.data[key], reference.event_index[key], max_values, rng)
        low, high = clip_range(reference_values, clip_quantile)
        reference_values = np.clip(reference_values, low, high)
        floors[key] = statistical_floor(reference_values, reference_events, reference.n_events, n_floor_splits, seed + position)

        for name, values in samples.items():
            if key not in values.data:
                log.warning("%s: sample %r has no observable %s; left out of its score", process, name, key)
                continue
            sample_values, sample_events = _capped(values.data[key], values.event_index[key], max_values, rng)
            sample_values = np.clip(sample_values, low, high)
            value, uncertainty = bootstrap_distance(
                sample_values, sample_events, reference_values, reference_events, reference.n_events, n_bootstrap, seed + position
            )
            floor = floors[key].value
            ratio = value / floor if floor > 0 else float("nan")
            distances[name][key] = Distance(value, uncertainty, ratio, len(sample_values))
    return Comparison(process=process, floors=floors, distances=distances)


# --- tables --------------------------------------------------------------------------------------


def table_rows(comparisons: list[Comparison]) -> list[dict]:
    """Return one row per (process, observable) with the floor and each sample's distance and ratio."""
    rows = []
    for comparison in comparisons:
        for key, floor in comparison.floors.items():
            row = {
                "process": comparison.process,
                "observable": key,
                "floor": floor.value,
                "floor_uncertainty": floor.uncertainty,
            }
            for name, distances in comparison.distances.items():
                distance = distances.get(key)
                row[name] = distance.value if distance else float("nan")
                row[f"{name}_uncertainty"] = distance.uncertainty if distance else float("nan")
                row[f"{name}_ratio"] = distance.ratio if distance else float("nan")
            rows.append(row)
    return rows


def scores(comparisons: list[Comparison]) -> dict[str, dict[str, float]]:
    """Return sample -> {process: score, ..., "all": median ratio over every process's observables}."""
    names = list(comparisons[0].distances) if comparisons else []
    result: dict[str, dict[str, float]] = {}
    for name in names:
        per_process = {c.process: c.score(name) for c in comparisons}
        all_ratios = [d.ratio for c in comparisons for d in c.distances[name].values()]
        per_process["all"] = score(all_ratios)
        result[name] = per_process
    return result


def _format(value: float, uncertainty: float) -> str:
    if not np.isfinite(value):
        return "n/a"
    if np.isfinite(uncertainty):
        return f"{value:.3g} ± {uncertainty:.2g}"
    return f"{value:.3g}"


def markdown_table(comparisons: list[Comparison]) -> str:
    """Return the distance table as Markdown: one row per observable, one column per sample next to the floor."""
    names = list(comparisons[0].distances) if comparisons else []
    lines = [
        "| process | observable | floor | " + " | ".join(names) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in names) + " |",
    ]
    for row in table_rows(comparisons):
        cells = [row["process"], f"`{row['observable']}`", _format(row["floor"], row["floor_uncertainty"])]
        for name in names:
            text = _format(row[name], row[f"{name}_uncertainty"])
            if np.isfinite(row[f"{name}_ratio"]):
                text += f" ({row[f'{name}_ratio']:.2f})"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")

    lines.append("")
    lines.append("Score (median of distance / floor; lower is better, and a sample statistically identical to the reference scores below 1):")
    lines.append("")
    for name, per_process in scores(comparisons).items():
        parts = ", ".join(f"{process} {value:.2f}" for process, value in per_process.items())
        lines.append(f"- {name}: {parts}")
    return "\n".join(lines) + "\n"


def write_tables(comparisons: list[Comparison], folder) -> None:
    """Write ``distances.md``, ``distances.csv`` and ``distances.json`` into ``folder``."""
    import csv
    import json
    from pathlib import Path

    folder = Path(folder)
    (folder / "distances.md").write_text(markdown_table(comparisons))

    rows = table_rows(comparisons)
    if rows:
        with open(folder / "distances.csv", "w", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        (folder / "distances.csv").write_text("process,observable,floor,floor_uncertainty\n")

    document = {
        "definition": "1-Wasserstein distance to the reference; floor = distance between two halves of the reference",
        "scores": scores(comparisons),
        "processes": {
            c.process: {
                "floors": {key: asdict(floor) for key, floor in c.floors.items()},
                "distances": {
                    name: {key: asdict(d) for key, d in per_key.items()} for name, per_key in c.distances.items()
                },
            }
            for c in comparisons
        },
    }
    (folder / "distances.json").write_text(json.dumps(json_safe(document), indent=1) + "\n")


def json_safe(value):
    """Return ``value`` with NaN and infinities replaced by None, so the JSON is standard."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
