"""Figures of the paper regenerated from the theory (and, for Fig. 8, a finite-size sample).

* :func:`figure_fig8`: the density of U_gep at the Fig. 2 mixture and t = 0.01 against the histogram
  of the eigenvalues of one sampled U_gep (paper Fig. 8, "Test of eqs. (114) for t = 0.01";
  spectrum.md §5-6).
* :func:`figure_fig2b`: the windows W_gen = tau_mem - tau_gen and W_mem = tau_final - tau_mem
  against the variance ratio sigma_2^2 / sigma_1^2 (paper Fig. 2b, Sec. 3.2; spectrum.md §5,
  "Windows versus variance ratio").

Each writes a PNG and a PDF, the numbers (JSON or CSV) and ``provenance.json`` into its output
folder.  Plots use Matplotlib's object-oriented API (Agg canvas), never pyplot's global state.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from diffmix._provenance import provenance, write_json_atomic
from diffmix.solvers import Spectrum, edge_path
from diffmix.theory import Model

from ._spectrum import SeedComparison, TheoryCDF, compare_with_diagonalization

__all__ = ["FigureOutput", "draw_density", "fig8_model",
           "figure_fig2b", "figure_fig8"]

#: psi_p = p/d and psi_n = n/d of the paper's Fig. 2 (its chi_p, chi_m).
FIG2_PSI_P = 60.0
FIG2_PSI_N = 30.0
#: rho-weighted mean variance of the Fig. 2a mixture, held fixed in the "fixed-mean" convention.
_FIG2_MEAN_VARIANCE = 0.375
_FIG2_SIGMA1_2 = 0.5
_CONVENTIONS = ("fixed-mean", "fixed-sigma1")


@dataclass(frozen=True)
class FigureOutput:
    """What a figure function wrote.

    Attributes
    ----------
    name : str
    files : dict
        Kind ("png", "pdf", "json" or "csv", "provenance") -> path.
    numbers : dict
        The numbers shown, as written to the JSON/CSV file.
    """

    name: str
    files: dict
    numbers: dict


def fig8_model() -> Model:
    """The Fig. 2 mixture at t = 0.01 (paper Fig. 8): tanh, psi_p = 60, psi_n = 30,
    rho = (0.5, 0.5), sigma^2 = (0.5, 0.25), centered.

    Examples
    --------
    >>> fig8_model().variances
    (0.5, 0.25)
    """
    return Model("tanh", 0.01, FIG2_PSI_P, FIG2_PSI_N, [0.5, 0.5], [0.5, 0.25])


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"


def _model_text(model: Model) -> str:
    return (f"{model.activation}, t = {model.t:g}, $\\psi_p$ = {model.psi_p:g}, "
            f"$\\psi_n$ = {model.psi_n:g}, $\\rho$ = {_fmt(model.weights)}, "
            f"$\\sigma^2$ = {_fmt(model.variances)}")


def _sample_bins(eigenvalues: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Log-spaced bins over one bulk and its sample: about 1.5 sqrt(count) bins, 8 to 60."""
    n_bins = int(np.clip(round(1.5 * math.sqrt(eigenvalues.size)), 8, 60))
    return np.geomspace(min(lo, eigenvalues[0]), max(hi, eigenvalues[-1]), n_bins + 1)


def draw_density(ax, cdf: TheoryCDF, sample: SeedComparison | None = None, p: int | None = None, *,
                 details: bool = True) -> None:
    """Draw lambda rho(lambda) on a log lambda axis, edges and atom marked, optionally a sample.

    lambda rho(lambda) is the density per unit ln(lambda), so that areas on the log axis are
    masses.  The sample's continuous eigenvalues (the bulks of the index split, spectrum.md §5)
    are histogrammed bulk by bulk on log-spaced bins, normalised by p.

    Parameters
    ----------
    ax : matplotlib Axes
    cdf : TheoryCDF
        Its ``lam`` and ``rho`` are the theory density on the adapted grid.
    sample : SeedComparison, optional
    p : int, optional
        Matrix size (required with ``sample``).
    details : bool
        Legend (below the axes) and timescale labels at the edges (off for a zoom panel).
    """
    spec = cdf.spectrum
    n_bulks = len(spec.bulks)
    lam = cdf.lam.reshape(n_bulks, -1)
    rho = cdf.rho.reshape(n_bulks, -1)
    for k in range(n_bulks):
        ax.plot(lam[k], lam[k] * rho[k], color="C0", lw=1.4,
                label="theory (spectrum.md §2)" if k == 0 else None)
    if sample is not None:
        for k in range(n_bulks):
            e = sample.eigenvalues[sample.bounds[k + 1]:sample.bounds[k + 2]]
            bins = _sample_bins(e, cdf.lower[k], cdf.upper[k])
            counts, _ = np.histogram(e, bins)
            ax.stairs(counts / (p * np.diff(np.log(bins))), bins, color="C1", fill=True, alpha=0.35,
                      label=f"sampled $U_{{gep}}$ (seed {sample.seed})" if k == 0 else None)
    names = {(n_bulks - 1, 0): r"$1/\tau_{gen}$", (0, 0): r"$1/\tau_{final}$"}
    if n_bulks >= 2 and spec.params.psi_n > 1:
        names[(n_bulks - 2, 1)] = r"$1/\tau_{mem}$"
    for k in range(n_bulks):
        for side, edge in enumerate((cdf.lower[k], cdf.upper[k])):
            ax.axvline(edge, color="0.4", ls=":", lw=0.8,
                       label="theory edges" if (k, side) == (0, 0) else None)
            if details and (k, side) in names:
                ax.annotate(names[(k, side)], (edge, 1.0), xycoords=("data", "axes fraction"),
                            xytext=(2, -12), textcoords="offset points", fontsize=8, color="0.3")
    for loc, weight in spec.atoms:
        label = f"atom (delta peak) at $s^2$ = {loc:.4g}, weight {weight:.4f}"
        if sample is not None:
            label += f";\n{sample.atom_found} eigenvalues equal to $s^2$, {sample.atom_expected} expected"
        ax.axvline(loc, color="C3", lw=1.2, label=label)
    ax.set_xscale("log")
    ax.set_xlabel(r"eigenvalue $\lambda$ of $U$ (unscaled, gep.md)")
    ax.set_ylabel(r"$\lambda\,\rho(\lambda)$  (density per unit $\ln\lambda$)")
    ax.set_ylim(bottom=0)
    if details:
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)


def _save(fig: Figure, out_dir: Path, name: str) -> dict:
    files = {}
    for kind in ("png", "pdf"):
        path = out_dir / f"{name}.{kind}"
        fig.savefig(path, dpi=150 if kind == "png" else None)
        files[kind] = path
    return files


def _spectrum_numbers(spec: Spectrum) -> dict:
    return {"edges": spec.edges, "atoms": [[float(loc), float(w)] for loc, w in spec.atoms],
            "masses": [float(b.mass) for b in spec.bulks], **spec.timescales,
            "converged": spec.converged, "message": spec.message}


def figure_fig8(out_dir, *, full: bool = False, d: int | None = None, seed: int = 1) -> FigureOutput:
    """Paper Fig. 8: theory density against one sampled U_gep at the Fig. 2 mixture, t = 0.01.

    The model is :func:`fig8_model`; the sample has d = 60 (p = 3600, n = 1800) by default, the
    paper's d = 100 (p = 6000, n = 3000) with ``full`` (sampling plus one-thread eigvalsh: ~5 s
    and ~30 s; the whole figure ~13 s and ~40 s on 2 CPU cores).  The numbers
    (KS and L1 of spectrum.md §6, atom count, bulk extremes against the edges) go to
    ``fig8.json``.

    Parameters
    ----------
    out_dir : path
        Created if missing.
    full : bool
        The paper's size d = 100.
    d : int, optional
        Any other data dimension (overrides ``full``).
    seed : int
        Seed of the sample.

    Returns
    -------
    FigureOutput
        Files fig8.png, fig8.pdf, fig8.json, provenance.json.
    """
    out_dir = Path(out_dir)
    model = fig8_model()
    d = d if d is not None else (100 if full else 60)
    comparison = compare_with_diagonalization(model, d, [seed])
    spec = comparison.theory
    cdf = TheoryCDF.from_spectrum(spec)
    sample = comparison.per_seed[0]
    size = comparison.size

    fig = Figure(figsize=(10.0, 4.8), layout="constrained")
    ax, zoom = fig.subplots(1, 2, width_ratios=(3, 1))
    draw_density(ax, cdf, sample, size.p)
    draw_density(zoom, cdf, sample, size.p, details=False)
    lo_atom = min([cdf.lower[0]] + [loc for loc, _ in spec.atoms])
    zoom.set_xscale("linear")
    zoom.set_xlim(lo_atom - 0.05 * (cdf.upper[0] - lo_atom), cdf.upper[0] + 0.1 * (cdf.upper[0] - lo_atom))
    zoom.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
    zoom.set_xlabel(r"$\lambda$ (linear axis)")
    zoom.set_title("zoom: atom and leftmost bulk", fontsize=8)
    fig.suptitle(f"Spectrum of $U_{{gep}}$ (paper Fig. 8): {_model_text(model)}\n"
                 f"sample d = {size.d}, p = {size.p}, n = {size.n}, seed {seed}: "
                 f"KS = {sample.ks:.4f}, L1 (80 log bins) = {sample.l1:.4f}", fontsize=9)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = _save(fig, out_dir, "fig8")
    numbers = {"theory": _spectrum_numbers(spec), "sample": comparison.summary()}
    files["json"] = write_json_atomic(out_dir / "fig8.json", numbers)
    params = {"model": model.to_dict(), "model_hash": model.content_hash(), "d": size.d, "p": size.p,
              "n": size.n, "seed": seed, "matrix": "gep", "n_bins_l1": comparison.n_bins}
    files["provenance"] = write_json_atomic(out_dir / "provenance.json",
                                            provenance("diffmix figure fig8", params))
    return FigureOutput("fig8", files, numbers)


def _fig2b_variances(convention: str, rho, ratio: float) -> tuple[float, float]:
    """(sigma_1^2, sigma_2^2) at variance ratio sigma_2^2 / sigma_1^2 = ratio."""
    if convention == "fixed-mean":
        sigma1_2 = _FIG2_MEAN_VARIANCE / (rho[0] + rho[1] * ratio)
    else:
        sigma1_2 = _FIG2_SIGMA1_2
    return sigma1_2, ratio * sigma1_2


def figure_fig2b(out_dir, *, convention: str = "fixed-mean",
                 rhos=((0.5, 0.5), (0.7, 0.3), (0.3, 0.7)), n_ratios: int = 40,
                 ratio_range: tuple[float, float] = (0.1, 10.0)) -> FigureOutput:
    """Paper Fig. 2b: W_gen and W_mem against the variance ratio sigma_2^2 / sigma_1^2.

    tanh, t = 0.001, psi_p = 60, psi_n = 30, centered (spectrum.md §5, windows tables).  For a
    ratio q the variances are, with m = 0.375 the rho-weighted mean variance of the Fig. 2a point,

    * ``"fixed-mean"``: sigma^2 = (m / (rho_1 + rho_2 q), q m / (rho_1 + rho_2 q)), so that
      rho_1 sigma_1^2 + rho_2 sigma_2^2 = m (the reading of the paper's baseline that spectrum.md
      §5 finds consistent with its text);
    * ``"fixed-sigma1"``: sigma^2 = (0.5, 0.5 q).

    The windows, in units of 1/lambda (flow time: times p/2), come from the edges followed along
    the ratio by :func:`diffmix.solvers.edge_path` (a full :func:`find_edges` search where the
    bulk structure changes); a point whose edge search does not converge is kept in
    the CSV with its message and left out of the plot.

    Parameters
    ----------
    out_dir : path
        Created if missing.
    convention : {"fixed-mean", "fixed-sigma1"}
    rhos : sequence of (rho_1, rho_2)
        One line per class balance.
    n_ratios : int
        Ratios, log-spaced over ``ratio_range``.
    ratio_range : (float, float)

    Returns
    -------
    FigureOutput
        Files fig2b.png, fig2b.pdf, fig2b.csv, provenance.json; ``numbers["rows"]`` holds the
        CSV rows.

    Raises
    ------
    ValueError
        For an unknown convention, n_ratios < 2 or a bad ratio range.
    """
    if convention not in _CONVENTIONS:
        raise ValueError(f"convention = {convention!r}: must be one of {', '.join(_CONVENTIONS)}")
    if not isinstance(n_ratios, int) or n_ratios < 2:
        raise ValueError(f"n_ratios = {n_ratios!r}: must be an integer >= 2")
    lo, hi = (float(v) for v in ratio_range)
    if not 0 < lo < hi < math.inf:
        raise ValueError(f"ratio_range = {ratio_range!r}: must be 0 < low < high")
    out_dir = Path(out_dir)
    ratios = np.geomspace(lo, hi, n_ratios)
    rows = []
    for rho in rhos:
        rho = tuple(float(r) for r in rho)
        models = [Model("tanh", 0.001, FIG2_PSI_P, FIG2_PSI_N, list(rho),
                        list(_fig2b_variances(convention, rho, float(q)))) for q in ratios]
        # Edges followed along the ratio (full search only where the bulk structure changes).
        path = edge_path(models, ratios)
        for q, model, spec in zip(ratios, models, path.spectra):
            variances = model.variances
            ts = spec.timescales
            rows.append({"rho_1": rho[0], "rho_2": rho[1], "ratio": float(q),
                         "sigma2_1": variances[0], "sigma2_2": variances[1], "n_bulks": len(spec.bulks),
                         **{k: ts.get(k) for k in ("tau_gen", "tau_mem", "tau_final", "W_gen", "W_mem")},
                         "converged": spec.converged, "message": spec.message})

    fixed = (f"$\\rho_1\\sigma_1^2 + \\rho_2\\sigma_2^2$ = {_FIG2_MEAN_VARIANCE:g} held fixed"
             if convention == "fixed-mean" else f"$\\sigma_1^2$ = {_FIG2_SIGMA1_2:g} held fixed")
    fig = Figure(figsize=(9.0, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    labels = (r"$W_{gen} = \tau_{mem} - \tau_{gen}$", r"$W_{mem} = \tau_{final} - \tau_{mem}$")
    for ax, key, label in zip(axes, ("W_gen", "W_mem"), labels):
        for i, rho in enumerate(rhos):
            pts = [(r["ratio"], r[key]) for r in rows if (r["rho_1"], r["rho_2"]) == tuple(map(float, rho))
                   and r["converged"] and r[key] is not None]
            if pts:
                x, y = np.array(pts).T
                ax.plot(x, y, marker=".", ms=3, color=f"C{i}", label=f"$\\rho$ = {_fmt(rho)}")
        ax.axvline(1.0, color="0.5", ls="--", lw=0.8, label="unimodal ($\\sigma_1^2 = \\sigma_2^2$)")
        ax.axvline(0.5, color="0.5", ls=":", lw=0.8, label="Fig. 2a ratio 0.5")
        ax.set_xscale("log")
        ax.set_xlabel(r"variance ratio $\sigma_2^2/\sigma_1^2$")
        ax.set_ylabel(label + r"  (units of $1/\lambda$)")
        ax.grid(True, which="both", lw=0.3, alpha=0.5)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(f"Paper Fig. 2b: windows vs class variance ratio. tanh, t = 0.001, "
                 f"$\\psi_p$ = {FIG2_PSI_P:g}, $\\psi_n$ = {FIG2_PSI_N:g}, centered; {fixed}\n"
                 "(timescales from the spectral edges, spectrum.md §5; flow time = these x p/2)",
                 fontsize=9)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = _save(fig, out_dir, "fig2b")
    files["csv"] = out_dir / "fig2b.csv"
    with open(files["csv"], "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    held = ({"mean_variance": _FIG2_MEAN_VARIANCE} if convention == "fixed-mean"
            else {"sigma1_2": _FIG2_SIGMA1_2})
    params = {"convention": convention, **held, "rhos": [list(map(float, r)) for r in rhos],
              "n_ratios": n_ratios, "ratio_range": [lo, hi], "activation": "tanh", "t": 0.001,
              "psi_p": FIG2_PSI_P, "psi_n": FIG2_PSI_N, "time_unit": "1/lambda"}
    files["provenance"] = write_json_atomic(out_dir / "provenance.json",
                                            provenance("diffmix figure fig2b", params))
    return FigureOutput("fig2b", files, {"rows": rows})
