"""Real data against the theory: DDPM memorization on Fashion-MNIST pairs and the RF prediction (paper
Sec. 4, Figs. 5-6, Result 4; issue 8 items 4-5).

* **RF side** (:func:`rf_pair_gaps`): for a Sneaker-partner pair at a Sneaker proportion, the two-class
  Model of :func:`diffmix.gpu.pair_model` (partner variance, centroid norms and the cosine of the two
  centered centroids, measured on the training set, one common scale so that the pair's mean class
  variance is 1) is trained by the exact gradient flow on its Gaussian-equivalent matrices
  (:func:`diffmix.validation.hierarchy`, extensive-centroid GEP of ``speciation.md`` §1.2, seed mean
  of the curves); its memorization times tau_mem^c (first crossing of ``threshold`` by E_test^c,
  paper eq. (15)) give the RF memorization gap tau_mem^{Sneaker} - tau_mem^{partner} in flow time
  (``diffmix.theory.TIME_UNIT``). The paper's Sec. 4 values of p, d, n were lost in extraction
  (App. I.2); the defaults here are Fig. 3's ratios psi_p = 60, psi_n = 30 at t = 0.01 and d = 20
  (``--full``: d = 100, the paper's size elsewhere).
* **DDPM side**: ``memorization.json`` records written by ``diffmix ddpm memorization`` (per
  checkpoint per-class memorization fractions with bootstrap intervals, t_mem^c, the gap of eq.
  (147) in training steps).
* :func:`figure_fig5` draws the DDPM fractions and gaps against the pair descriptors (paper Fig. 5);
  :func:`figure_fig6` puts the DDPM and RF gaps of the same pairs side by side against the three
  descriptors and reports their Pearson and Spearman correlations across pairs (Result 4);
  :func:`figure_fig11` shows one run's samples beside their two nearest training images (paper Fig. 11).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import stats as scipy_stats

from diffmix.gpu import ClassStatistics, pair_model
from diffmix.theory import TIME_UNIT

from ._learning import LearningFigure, _save, hierarchy

#: Axis label of an RF gap (the full unit, ``TIME_UNIT``, is in the suptitle and the JSON).
RF_GAP_LABEL = r"RF gap $\tau_{mem}^{snk} - \tau_{mem}^{p}$ (flow time $\tau$)"

__all__ = ["PairGap", "rf_pair_gaps", "gap_correlation", "load_ddpm_records", "figure_fig5", "figure_fig6",
           "figure_fig11", "RF_DEFAULTS"]

#: The RF model of a pair (see the module docstring): diffusion time, ratios, dimension, seeds.
RF_DEFAULTS = {"t": 0.01, "psi_p": 60.0, "psi_n": 30.0, "d": 20, "d_full": 100, "seeds": (100, 101, 102),
               "threshold": 1.0}
SNEAKER = 7


@dataclass(frozen=True)
class PairGap:
    """The RF memorization gap of one Sneaker-partner pair at one Sneaker proportion.

    ``variance`` is the partner's mean pixel variance ([0, 1] pixels, as ``diffmix fmnist stats``);
    ``centroid_norm2`` the partner's normalized squared centroid norm as the Model sees it
    (||mu_p - mu||^2 / 784 divided by the pair's mean class variance); ``cosine`` that of the two
    centered centroids. ``tau_mem`` = (Sneaker, partner) in ``time_unit``, None where E_test^c never
    crosses the threshold; ``gap`` = tau_mem[0] - tau_mem[1] (None if either is None).
    """

    partner: int
    name: str
    sneaker_fraction: float
    variance: float
    variance_ratio: float
    centroid_norm2: float
    cosine: float
    tau_mem: tuple
    tau_gen: tuple
    gap: float | None
    time_unit: str

    def as_dict(self) -> dict:
        return asdict(self)


def rf_pair_gaps(stats: ClassStatistics, pairs: Sequence[tuple[int, float]], *, d: int = 20,
                 seeds: Sequence[int] = RF_DEFAULTS["seeds"], t: float = RF_DEFAULTS["t"],
                 psi_p: float = RF_DEFAULTS["psi_p"], psi_n: float = RF_DEFAULTS["psi_n"],
                 threshold: float = RF_DEFAULTS["threshold"], cache: bool = True,
                 progress: bool = False) -> list[PairGap]:
    """RF memorization gaps of Sneaker-partner pairs (paper Result 4, Fig. 6).

    Parameters
    ----------
    stats : ClassStatistics
        Of the training set, reference Sneaker (:func:`diffmix.gpu.class_statistics`).
    pairs : sequence of (partner, sneaker_fraction)
    d : int, keyword-only
        Data dimension of the sampled GEP matrices (p = psi_p d, n = psi_n d).
    seeds : sequence of int
        Draws averaged (curves averaged, then the times read, as the paper does).
    t, psi_p, psi_n : float
        Of :func:`diffmix.gpu.pair_model`.
    threshold : float
        tau_mem^c = first crossing of this value by E_test^c (eq. (15): 1).

    Returns
    -------
    list of PairGap, in the order of ``pairs``.
    """
    out = []
    it = list(pairs)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc=f"RF pair gaps d={d}", unit="pair")
    for partner, fraction in it:
        model = pair_model(stats, int(partner), float(fraction), t=t, psi_p=psi_p, psi_n=psi_n)
        record = hierarchy(model, d, seeds, "gep", threshold=threshold, cache=cache)
        classes = record["classes"]
        tau_mem = tuple(c["tau_mem"] for c in classes)
        gap = None if None in tau_mem else float(tau_mem[0] - tau_mem[1])
        out.append(PairGap(int(partner), stats.names[int(partner)], float(fraction),
                           float(stats.variance[int(partner)]),
                           float(stats.variance[int(partner)] / stats.variance[SNEAKER]),
                           float(model.centroid_norm2[1]), float(model.cosine[0][1]), tau_mem,
                           tuple(c["tau_gen"] for c in classes), gap, record["time_unit"]))
    return out


def gap_correlation(x: Sequence[float | None], y: Sequence[float | None]) -> dict:
    """Pearson and Spearman correlations of two gap lists over the entries where both are finite.

    Returns ``{"n", "pearson", "spearman", "pearson_p", "spearman_p"}`` (None where n < 3).

    Examples
    --------
    >>> r = gap_correlation([1, 2, 3, None], [2, 4, 7, 1])
    >>> r["n"], round(r["spearman"], 12)
    (3, 1.0)
    """
    pairs = [(float(a), float(b)) for a, b in zip(x, y)
             if a is not None and b is not None and math.isfinite(float(a)) and math.isfinite(float(b))]
    n = len(pairs)
    if n < 3:
        return {"n": n, "pearson": None, "spearman": None, "pearson_p": None, "spearman_p": None}
    a, b = np.array(pairs).T
    pr = scipy_stats.pearsonr(a, b)
    sr = scipy_stats.spearmanr(a, b)
    return {"n": n, "pearson": float(pr.statistic), "pearson_p": float(pr.pvalue),
            "spearman": float(sr.statistic), "spearman_p": float(sr.pvalue)}


# ---------------------------------------------------------------------- DDPM records

def load_ddpm_records(paths: Sequence[str | Path]) -> list[dict]:
    """The ``memorization.json`` records of DDPM runs (run folders or the files themselves).

    Raises
    ------
    ValueError
        A path without a memorization record (run ``diffmix ddpm memorization --run DIR`` first),
        or a record without the keys the figures use.
    """
    records = []
    for path in paths:
        path = Path(path)
        file = path / "memorization.json" if path.is_dir() else path
        if not file.is_file():
            raise ValueError(f"--runs: {path} has no memorization.json (run 'diffmix ddpm memorization "
                             f"--run {path}' first)")
        record = json.loads(file.read_text())
        missing = [k for k in ("pair", "classes", "checkpoints", "t_mem_sneaker", "t_mem_partner", "gap")
                   if k not in record]
        if missing:
            raise ValueError(f"--runs: {file} lacks {', '.join(missing)}: not a 'diffmix ddpm memorization' record")
        record["source"] = str(file)
        records.append(record)
    if not records:
        raise ValueError("--runs: at least one DDPM run is needed")
    return records


def _fraction_arrays(record: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rows = record["checkpoints"]
    num = lambda v: np.nan if v is None else float(v)
    steps = np.array([r["step"] for r in rows], dtype=float)
    f = np.array([[num(v) for v in r["fractions"]] for r in rows])
    lo = np.array([[num(v) for v in r["ci_low"]] for r in rows])
    hi = np.array([[num(v) for v in r["ci_high"]] for r in rows])
    return steps, f, lo, hi


def _pair_label(record: dict) -> str:
    names = record["pair"]["names"]
    return f"{names[0]}-{names[1]} ({100 * record['pair']['sneaker_fraction']:.0f}% Sneaker)"


def _descriptors(stats: ClassStatistics, partner: int, fraction: float) -> dict:
    model = pair_model(stats, partner, fraction, t=RF_DEFAULTS["t"], psi_p=RF_DEFAULTS["psi_p"],
                       psi_n=RF_DEFAULTS["psi_n"])
    return {"variance": float(stats.variance[partner]),
            "variance_ratio": float(stats.variance[partner] / stats.variance[SNEAKER]),
            "centroid_norm2": float(model.centroid_norm2[1]), "cosine": float(model.cosine[0][1])}


_DESCRIPTOR_LABELS = {"variance": "partner mean pixel variance",
                      "centroid_norm2": r"partner $\|\mu_p-\mu\|^2/784$ / pair variance",
                      "cosine": r"cos($\mu_{snk}-\mu$, $\mu_p-\mu$)"}


def figure_fig5(out_dir, records: Sequence[dict], stats: ClassStatistics, *,
                params: dict | None = None) -> LearningFigure:
    """Paper Fig. 5: DDPM per-class memorization and the Sneaker-partner gaps (eq. (147)).

    (a) per-class memorization fractions against training step for up to four runs, bootstrap bands,
    the 1/3 threshold and the shaded gap; (b) the gap against the partner's pixel variance; (c) the gap
    against the partner's proportion, one line per partner; (d) the gap against the partner's
    normalized centroid norm. Gaps in training steps; runs whose threshold is not crossed by both
    classes are listed in the JSON and left out of (b)-(d).
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    ax = axes[0, 0]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    rows = []
    for k, record in enumerate(records):
        partner = int(record["pair"]["partner"])
        fraction = float(record["pair"]["sneaker_fraction"])
        rows.append(dict(partner=partner, name=record["pair"]["names"][1], sneaker_fraction=fraction,
                         t_mem_sneaker=record["t_mem_sneaker"], t_mem_partner=record["t_mem_partner"],
                         gap=record["gap"], source=record["source"],
                         complete=record.get("complete", True), **_descriptors(stats, partner, fraction)))
        if k >= 4:
            continue
        steps, f, lo, hi = _fraction_arrays(record)
        for c, style in ((0, "-"), (1, "--")):
            ax.plot(steps, f[:, c], style, color=colors[k % len(colors)], marker="o", ms=3,
                    label=f"{record['classes'][c]} [{_pair_label(record)}]")
            ax.fill_between(steps, lo[:, c], hi[:, c], color=colors[k % len(colors)], alpha=0.12)
        t0, t1 = record["t_mem_sneaker"], record["t_mem_partner"]
        if t0 is not None and t1 is not None:
            ax.axvspan(min(t0, t1), max(t0, t1), color=colors[k % len(colors)], alpha=0.08)
    ax.axhline(1 / 3, color="k", ls=":", lw=1, label="threshold 1/3")
    ax.set(xscale="log", xlabel="training step", ylabel="memorized fraction $f^c_{mem}$",
           title="(a) per-class memorization (bands: bootstrap)")
    ax.legend(fontsize=6)
    done = [r for r in rows if r["gap"] is not None]
    for ax, key, title in ((axes[0, 1], "variance", "(b) gap vs partner variance"),
                           (axes[1, 1], "centroid_norm2", "(d) gap vs partner centroid norm")):
        for r in done:
            ax.scatter(r[key], r["gap"], color=colors[r["partner"] % len(colors)])
            ax.annotate(f"{r['name']} {100 * r['sneaker_fraction']:.0f}%", (r[key], r["gap"]), fontsize=7)
        ax.axhline(0, color="0.6", lw=0.8)
        ax.set(xlabel=_DESCRIPTOR_LABELS[key], ylabel=r"$\Delta t_{mem}$ = $t^{snk}_{mem} - t^{p}_{mem}$ (steps)",
               title=title)
    ax = axes[1, 0]
    for partner in sorted({r["partner"] for r in done}):
        pts = sorted((1 - r["sneaker_fraction"], r["gap"]) for r in done if r["partner"] == partner)
        ax.plot(*zip(*pts), marker="o", color=colors[partner % len(colors)], label=stats.names[partner])
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set(xlabel="partner proportion $1-\\rho_{snk}$", ylabel=r"$\Delta t_{mem}$ (steps)",
           title="(c) gap vs partner proportion")
    if done:
        ax.legend(fontsize=7)
    fig.suptitle("DDPM on Fashion-MNIST Sneaker pairs: memorization (d1/d2 < 1/3) per class, "
                 f"{len(records)} run(s), {len(done)} with both classes past the threshold", fontsize=10)
    fig.tight_layout()
    numbers = {"runs": rows, "threshold": 1 / 3, "gap_unit": "training steps",
               "not_crossed": [r["source"] for r in rows if r["gap"] is None]}
    result = _save(fig, Path(out_dir), "fig5", numbers, dict(params or {}, runs=[r["source"] for r in rows]))
    plt.close(fig)
    return result


def figure_fig6(out_dir, records: Sequence[dict], stats: ClassStatistics, *, d: int = RF_DEFAULTS["d"],
                seeds: Sequence[int] = RF_DEFAULTS["seeds"], threshold: float = RF_DEFAULTS["threshold"],
                cache: bool = True, params: dict | None = None) -> LearningFigure:
    """Paper Fig. 6 / Result 4: DDPM against RF memorization gaps across pairs, and their correlation.

    For every DDPM record (pair, Sneaker proportion) the RF gap of the same pair's Model
    (:func:`rf_pair_gaps`, d, seeds, threshold) is computed; three panels plot both gaps (DDPM:
    left axis, training steps; RF: right axis, flow time) against partner variance, normalized
    centroid norm and cosine to Sneaker; the fourth plots DDPM against RF gap. The Pearson and
    Spearman correlations across the records where both gaps exist are the number of Result 4.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    pairs = [(int(r["pair"]["partner"]), float(r["pair"]["sneaker_fraction"])) for r in records]
    rf = rf_pair_gaps(stats, pairs, d=d, seeds=seeds, threshold=threshold, cache=cache, progress=True)
    rows = []
    for record, gap in zip(records, rf):
        rows.append(dict(gap.as_dict(), ddpm_gap=record["gap"], ddpm_t_mem=(record["t_mem_sneaker"],
                                                                             record["t_mem_partner"]),
                         rf_gap=gap.gap, source=record["source"],
                         complete=record.get("complete", True)))
    corr = gap_correlation([r["ddpm_gap"] for r in rows], [r["rf_gap"] for r in rows])
    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    for ax, key in zip((axes[0, 0], axes[0, 1], axes[1, 0]), ("variance", "centroid_norm2", "cosine")):
        twin = ax.twinx()
        for r in rows:
            label = f"{r['name']} {100 * r['sneaker_fraction']:.0f}%"
            if r["ddpm_gap"] is not None:
                ax.scatter(r[key], r["ddpm_gap"], color="C0", marker="o")
                ax.annotate(label, (r[key], r["ddpm_gap"]), fontsize=7, color="C0")
            if r["rf_gap"] is not None:
                twin.scatter(r[key], r["rf_gap"], color="C3", marker="s")
        ax.set(xlabel=_DESCRIPTOR_LABELS[key], ylabel="DDPM gap (training steps)")
        twin.set_ylabel(RF_GAP_LABEL, color="C3")
        twin.tick_params(axis="y", colors="C3")
        ax.set_title(f"gaps vs {key.replace('_', ' ')}")
        ax.legend(handles=[Line2D([], [], color="C0", marker="o", ls="", label="DDPM (left axis)"),
                           Line2D([], [], color="C3", marker="s", ls="", label="RF (right axis)")],
                  fontsize=7, loc="best")
    ax = axes[1, 1]
    both = [r for r in rows if r["ddpm_gap"] is not None and r["rf_gap"] is not None]
    for r in both:
        ax.scatter(r["rf_gap"], r["ddpm_gap"], color="C2")
        ax.annotate(f"{r['name']} {100 * r['sneaker_fraction']:.0f}%", (r["rf_gap"], r["ddpm_gap"]), fontsize=7)
    fmt = lambda v: "n/a" if v is None else f"{v:.2f}"
    ax.set(xlabel=RF_GAP_LABEL, ylabel="DDPM gap (training steps)",
           title=f"Pearson {fmt(corr['pearson'])}, Spearman {fmt(corr['spearman'])} (n = {corr['n']})")
    fig.suptitle(f"DDPM vs RF memorization gaps (RF: tanh, t = {RF_DEFAULTS['t']}, psi_p = {RF_DEFAULTS['psi_p']:g}, "
                 f"psi_n = {RF_DEFAULTS['psi_n']:g}, d = {d}, seeds {list(seeds)}, threshold {threshold:g})\n"
                 f"RF times in flow time tau = k eta_e (k gradient steps at eta = eta_e d / Delta_t, dynamics.md "
                 "§2); DDPM times in training steps", fontsize=10)
    fig.tight_layout()
    numbers = {"pairs": rows, "correlation": corr, "rf": {"d": d, "seeds": list(seeds), "threshold": threshold,
                                                          **{k: RF_DEFAULTS[k] for k in ("t", "psi_p", "psi_n")}},
               "ddpm_gap_unit": "training steps", "rf_gap_unit": TIME_UNIT}
    result = _save(fig, Path(out_dir), "fig6", numbers, dict(params or {}, d=d, seeds=list(seeds)))
    plt.close(fig)
    return result


def figure_fig11(out_dir, run_dir, *, data: str | None = None, n_show: int = 6, max_rows: int = 4,
                 params: dict | None = None) -> LearningFigure:
    """Paper Fig. 11 (and 13a-19a): generated samples beside their two nearest training images.

    Top: for up to ``max_rows`` checkpoints of the run (evenly spread over those evaluated, the last
    included), the first ``n_show`` generated samples (the same starting noise at every checkpoint:
    one column follows one trajectory through training), each followed by its first and second
    nearest training images (L2 on the 784 unpadded pixels in [0, 1], the metric of
    :func:`diffmix.gpu.track_memorization`); a sample with d1/d2 below the record's ratio is framed
    in red. Bottom: the mean distance of each class's samples to their first (solid) and second
    (dashed) nearest training images against training step, dotted lines at t_mem^c.

    The samples are the run's cached ``samples/step_<step>.npy`` of ``diffmix ddpm memorization``
    (the checkpoints themselves are not needed); their count and seed must match the record.

    Raises
    ------
    ValueError
        No memorization record, a missing or mismatched sample file, ``n_show`` or ``max_rows`` < 1.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from diffmix.gpu import load_run_subset
    from diffmix.gpu._memorization import memorized_mask

    if not isinstance(n_show, int) or n_show < 1:
        raise ValueError(f"n_show = {n_show!r}: must be an integer >= 1")
    if not isinstance(max_rows, int) or max_rows < 1:
        raise ValueError(f"max_rows = {max_rows!r}: must be an integer >= 1")
    run_dir = Path(run_dir)
    record = load_ddpm_records([run_dir])[0]
    subset = load_run_subset(run_dir, data=data)
    sampling = record["provenance"]["parameters"]
    ratio = float(sampling["ratio"])
    rows = record["checkpoints"]
    pick = sorted({int(round(x)) for x in np.linspace(0, len(rows) - 1, min(max_rows, len(rows)))})
    train = subset.pixels.reshape(subset.pixels.shape[0], -1).astype(np.float64) / 255.0
    side = subset.pixels.shape[-1]
    shown = []
    for i in pick:
        step = int(rows[i]["step"])
        path = run_dir / "samples" / f"step_{step:08d}.npy"
        meta_path = path.with_suffix(".json")
        if not path.is_file() or not meta_path.is_file():
            raise ValueError(f"{path}: no cached samples (run 'diffmix ddpm memorization --run {run_dir}' first)")
        meta = json.loads(meta_path.read_text())
        if meta.get("n") != sampling["n"] or meta.get("seed") != sampling["seed"]:
            raise ValueError(f"{path}: samples of n = {meta.get('n')}, seed = {meta.get('seed')}; the record "
                             f"used n = {sampling['n']}, seed = {sampling['seed']}")
        samples = np.load(path)[:n_show]
        unit = np.clip(subset.to_unit(samples[:, 0]), 0.0, 1.0).reshape(samples.shape[0], -1)
        # direct float64 distances to every training image (an independent check of nearest_two)
        dist = np.stack([np.sqrt(((train - u) ** 2).sum(axis=1)) for u in unit])   # one sample at a time
        order = np.argsort(dist, axis=1, kind="stable")[:, :2]
        d1, d2 = dist[np.arange(len(unit)), order[:, 0]], dist[np.arange(len(unit)), order[:, 1]]
        memorized = memorized_mask(d1, d2, ratio=ratio)      # the criterion itself is shared
        shown.append({"step": step, "d1": d1.tolist(), "d2": d2.tolist(), "nearest": order.tolist(),
                      "memorized": memorized.tolist(), "images": unit.reshape(-1, side, side),
                      "neighbours": train[order].reshape(-1, 2, side, side)})

    gap = 4
    triplet = 3 * side + 2
    width = n_show * triplet + (n_show - 1) * gap
    fig_width = max(8.0, 1.9 * n_show)
    row_height = fig_width * side / width + 0.35
    fig = plt.figure(figsize=(fig_width, row_height * len(shown) + 4.2))
    grid = fig.add_gridspec(len(shown) + 1, 1, height_ratios=[row_height] * len(shown) + [3.6])
    for r, entry in enumerate(shown):
        canvas = np.zeros((side, width))          # white under gray_r
        ax = fig.add_subplot(grid[r, 0])
        for j in range(len(entry["memorized"])):
            x0 = j * (triplet + gap)
            canvas[:, x0:x0 + side] = entry["images"][j]
            canvas[:, x0 + side + 1:x0 + 2 * side + 1] = entry["neighbours"][j, 0]
            canvas[:, x0 + 2 * side + 2:x0 + 3 * side + 2] = entry["neighbours"][j, 1]
        ax.imshow(canvas, cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
        for j, mem in enumerate(entry["memorized"]):
            x0 = j * (triplet + gap)
            if mem:
                ax.add_patch(Rectangle((x0 - 0.5, -0.5), side, side, fill=False, edgecolor="red", lw=2))
            ax.text(x0 + 1.5 * side, side + 5, f"d1/d2 = {entry['d1'][j] / entry['d2'][j]:.2f}", ha="center",
                    va="top", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(f"step {entry['step']}", fontsize=9)
        if r == 0:
            ax.set_title("each triplet: generated sample | 1st | 2nd nearest training image "
                         f"(red frame: memorized, d1/d2 < {ratio:.3g})", fontsize=9)
    ax = fig.add_subplot(grid[-1, 0])
    steps = np.array([row["step"] for row in rows], dtype=float)
    num = lambda v: np.nan if v is None else float(v)
    for c, color in ((0, "C0"), (1, "C3")):
        d1 = np.array([num(row["mean_d1_class"][c]) for row in rows])
        d2 = np.array([num(row["mean_d2_class"][c]) for row in rows])
        ax.plot(steps, d1, "-o", color=color, ms=3, label=f"{record['classes'][c]}: mean d1")
        ax.plot(steps, d2, "--o", color=color, ms=3, label=f"{record['classes'][c]}: mean d2")
        t = record["t_mem_sneaker"] if c == 0 else record["t_mem_partner"]
        if t is not None:
            ax.axvline(t, color=color, ls=":", label=f"t_mem {record['classes'][c]} = {t:.0f}")
    ax.set(xscale="log", xlabel="training step", ylabel="L2 distance to training image (784 pixels in [0, 1])")
    ax.legend(fontsize=8, ncol=3)
    pair = record["pair"]
    fig.suptitle(f"DDPM memorization, {pair['names'][0]}-{pair['names'][1]} at "
                 f"{100 * pair['sneaker_fraction']:.0f}% {pair['names'][0]}, {pair['size']} training images, "
                 f"{sampling['n']} samples per checkpoint (seed {sampling['seed']})", fontsize=10)
    fig.tight_layout()
    numbers = {"run": str(run_dir), "pair": pair, "ratio": ratio,
               "shown": [{k: v for k, v in e.items() if k not in ("images", "neighbours")} for e in shown],
               "mean_distances": [{"step": row["step"], "mean_d1_class": row["mean_d1_class"],
                                   "mean_d2_class": row["mean_d2_class"]} for row in rows],
               "t_mem": record["t_mem"]}
    result = _save(fig, Path(out_dir), "fig11", numbers, dict(params or {}, run=str(run_dir), n_show=n_show))
    plt.close(fig)
    return result
