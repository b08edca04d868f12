"""``diffmix ddpm``: train a DDPM on a Sneaker-partner pair and track per-class memorization (issue 8 item 2).

Subcommands (each ``--help`` states every default):

* ``train``: draw the pair subset (:func:`~diffmix.gpu.pair_subset`) from Fashion-MNIST and train the
  U-Net of App. J.1 (:func:`~diffmix.gpu._ddpm.train_ddpm`) into ``--out RUN_DIR``, with log-spaced
  checkpoints and a resumable state (run the same command again to resume);
* ``sample``: ancestral samples of one or all checkpoints, cached in ``RUN_DIR/samples``;
* ``memorization``: the evaluation of App. J.1 at every checkpoint (:func:`track_memorization`):
  pair classifier, nearest-neighbour gap ratio d1/d2 < 1/3 on the 784 unpadded pixels in [0, 1],
  per-class memorized fractions with bootstrap intervals, t_mem^c and the gap of eq. (147); writes
  ``RUN_DIR/memorization.json`` and ``memorization.csv``;
* ``track``: ``train`` then ``memorization`` in one command.

The run directory records how to rebuild its training subset (``run.json``: partner, Sneaker
fraction, size, data seed, data source and the subset's fingerprint), so ``sample`` and
``memorization`` need only ``--run``.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from pathlib import Path

import numpy as np

from ._fmnist import CLASS_NAMES, ENV_VAR, SNEAKER, FashionMNISTError, PairSubset, load_fashion_mnist, pair_subset

__all__ = ["ddpm_main", "load_run_subset", "track_memorization"]

MEMORIZATION_JSON = "memorization.json"
MEMORIZATION_CSV = "memorization.csv"
CLASSIFIER_NAME = "classifier.pt"
#: The paper's protocol (App. J.1), for the "reduced" record of a run.
PAPER_SIZE = 8000
PAPER_SAMPLES = 500
PAPER_CLASSIFIER_EPOCHS = 15


# ---------------------------------------------------------------------- the run's data


def _run_record(run_dir: Path) -> dict:
    path = run_dir / "run.json"
    if not path.exists():
        raise ValueError(f"--run {run_dir}: no run.json (not a run directory written by 'diffmix ddpm train')")
    return json.loads(path.read_text())


def load_run_subset(run_dir: str | Path, *, data: str | None = None) -> PairSubset:
    """Rebuild the training subset of a run (see :func:`_load_run_data`)."""
    return _load_run_data(run_dir, data=data)[1]


def _load_run_data(run_dir: str | Path, *, data: str | None = None):
    """Rebuild the training subset of a run from its ``run.json`` and check its fingerprint.

    Parameters
    ----------
    run_dir : path
    data : str, optional
        Fashion-MNIST location to use instead of the recorded one (a folder of IDX files or an .npz).

    Returns
    -------
    FashionMNIST, PairSubset
        The data set and the subset, identical (same SHA-256 of the images) to the one the run was
        trained on.
    """
    from ._ddpm import _fingerprint

    run_dir = Path(run_dir)
    parameters = _run_record(run_dir)["parameters"]
    spec = parameters.get("meta", {}).get("data")
    if not spec:
        raise ValueError(f"{run_dir / 'run.json'}: records no pair subset (meta.data); was it written by "
                         "'diffmix ddpm train'?")
    source = data if data is not None else spec["source"]
    fmnist = load_fashion_mnist(source, verify=False)
    subset = pair_subset(fmnist.x_train, fmnist.y_train, spec["partner"], sneaker_fraction=spec["sneaker_fraction"],
                         size=spec["size"], seed=spec["data_seed"], pad_to=spec["pad_to"])
    if _fingerprint(subset.images) != parameters["fingerprint"]:
        raise ValueError(f"{run_dir}: the subset rebuilt from {source} differs from the one the run was trained "
                         "on (fingerprint mismatch); pass --data with the original Fashion-MNIST files")
    return fmnist, subset


def _reduced(config, size: int, steps: int, checkpoints: int, config_name: str,
             time_limit: float | None = None) -> list[str]:
    from ._ddpm import PAPER_CHECKPOINTS, PAPER_STEPS, DDPMConfig

    notes = []
    if size != PAPER_SIZE:
        notes.append(f"training-set size {size} instead of {PAPER_SIZE}")
    if time_limit is not None:
        notes.append(f"training limited to {time_limit:g} s of wall time (at most {steps} steps; run.json's "
                     f"n_steps is what was done) instead of about {PAPER_STEPS:.0e} steps")
    elif steps < PAPER_STEPS:
        notes.append(f"{steps} gradient steps instead of about {PAPER_STEPS:.0e}")
    if checkpoints != PAPER_CHECKPOINTS:
        notes.append(f"{checkpoints} checkpoints instead of {PAPER_CHECKPOINTS}")
    paper = DDPMConfig.paper().to_dict()
    changed = [f"{k} = {v} (paper: {paper[k]})" for k, v in config.to_dict().items() if paper[k] != v]
    if changed:
        notes.append(f"'{config_name}' configuration: " + ", ".join(changed))
    return notes


# ---------------------------------------------------------------------- memorization


def _classifier(run_dir: Path, fmnist, subset: PairSubset, *, epochs: int, size: int | None, seed: int, device,
                retrain: bool, quiet: bool):
    from ._classifier import load_classifier, predict_classes, save_classifier, train_pair_classifier

    path = run_dir / (CLASSIFIER_NAME if size is None else f"classifier_n{size}.pt")
    if path.exists() and not retrain:
        model, report = load_classifier(path, device=device)
        cached = True
    else:
        if size is None:    # App. J.1: the pair's training set
            images, labels = subset.images, subset.labels
        else:               # a reduced run: a balanced draw of the pair, in the run's units
            try:
                more = pair_subset(fmnist.x_train, fmnist.y_train, subset.partner, sneaker_fraction=0.5,
                                   size=size, seed=seed, pad_to=None)
            except ValueError as exc:
                raise ValueError(f"--classifier-size = {size}: too large for the pair's training images ({exc})") \
                    from None
            images, labels = subset.standardize(more.pixels), more.labels
        if not quiet:
            print(f"training the pair classifier ({epochs} epoch(s), {labels.size} images) ...", file=sys.stderr)
        model, report = train_pair_classifier(images, labels, seed=seed, epochs=epochs, device=device)
        save_classifier(path, model, report)
        cached = False
    return model, report, cached, predict_classes


def _report_dict(report) -> dict:
    if hasattr(report, "to_dict"):
        return report.to_dict()
    if hasattr(report, "__dataclass_fields__"):
        import dataclasses
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in dataclasses.asdict(report).items()}
    return dict(report)


def _finite_or_none(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def track_memorization(run_dir: str | Path, *, n: int = PAPER_SAMPLES, seed: int = 0, batch_size: int = 500,
                       classifier_epochs: int = PAPER_CLASSIFIER_EPOCHS, classifier_size: int | None = None,
                       retrain_classifier: bool = False,
                       ratio: float = 1.0 / 3.0, threshold: float = 1.0 / 3.0, n_boot: int = 1000,
                       level: float = 0.9, device=None, amp: bool | None = None, data: str | None = None,
                       progress: bool = False, quiet: bool = True) -> dict:
    """Per-class memorization of every checkpoint of a run (App. J.1 "Evaluation"); writes the results.

    Steps: rebuild the run's subset (:func:`load_run_subset`); train (or load the cached
    ``classifier.pt``) the pair classifier on it (90/10 split), or with ``classifier_size`` N on N
    balanced images of the pair drawn from the 60,000 training images and standardized in the run's
    units (cached as ``classifier_n<N>.pt``; for reduced runs too small to train a classifier);
    sample ``n`` images at every
    checkpoint (:func:`~diffmix.gpu._ddpm.sample_checkpoints`, cached); per checkpoint, map samples
    to pixels on the 28 x 28 frame (``PairSubset.to_unit``: padding cropped, standardization undone)
    and clip them to [0, 1] (the generated image as an image), take d1, d2 to the training pixels
    (``subset.pixels / 255``; :func:`~diffmix.gpu._memorization.nearest_two`), the indicator
    d1/d2 < ``ratio``, the class of each sample from the classifier, per-class fractions with
    percentile-bootstrap intervals; then t_mem^c (first crossing of ``threshold``, log-interpolated)
    and the gap of eq. (147), t_mem^Sneaker - t_mem^partner (and its log10 ratio).
    ``memorization.json`` and ``.csv`` are rewritten after every checkpoint, with ``"complete":
    false`` until the last, so an interrupted evaluation keeps what it measured.

    Returns
    -------
    dict
        The content of ``memorization.json`` (also written with ``memorization.csv``).
    """
    from diffmix._provenance import provenance, write_file_atomic, write_json_atomic

    from ._ddpm import _resolve_device, list_checkpoints, sample_checkpoints
    from ._memorization import (bootstrap_fractions, class_fractions, log_memorization_gap, memorization_gap,
                                memorized_mask, nearest_two, threshold_crossing_time)

    run_dir = Path(run_dir)
    device = _resolve_device(device)
    fmnist, subset = _load_run_data(run_dir, data=data)
    names = (CLASS_NAMES[SNEAKER], CLASS_NAMES[subset.partner])
    model, report, cached, predict_classes = _classifier(run_dir, fmnist, subset, epochs=classifier_epochs,
                                                         size=classifier_size, seed=seed, device=device,
                                                         retrain=retrain_classifier, quiet=quiet)
    train_unit = subset.pixels.reshape(subset.pixels.shape[0], -1).astype(np.float64) / 255.0
    parameters = {"run": str(run_dir), "n": n, "seed": seed, "batch_size": batch_size,
                  "classifier_epochs": classifier_epochs, "classifier_size": classifier_size, "ratio": ratio,
                  "threshold": threshold, "n_boot": n_boot, "level": level, "device": str(device), "amp": amp}
    reduced = (_run_record(run_dir)["parameters"].get("meta", {}).get("reduced", []) + _trained_steps_note(run_dir)
               + ([f"{n} samples per checkpoint instead of {PAPER_SAMPLES}"] if n != PAPER_SAMPLES else [])
               + ([f"classifier trained {classifier_epochs} epoch(s) instead of {PAPER_CLASSIFIER_EPOCHS}"]
                  if classifier_epochs != PAPER_CLASSIFIER_EPOCHS and not cached else [])
               + ([f"classifier trained on {classifier_size} images of the pair (balanced, from the 60,000 "
                   "training images) instead of the run's training set"] if classifier_size is not None else []))
    all_steps = [step for step, _ in list_checkpoints(run_dir)]
    if not all_steps:
        raise ValueError(f"--run {run_dir}: no checkpoints in {run_dir / 'checkpoints'}")

    def write(rows: list[dict]) -> dict:
        # memorization.json after every checkpoint: an interrupted evaluation keeps what it measured
        steps = np.array([r["step"] for r in rows], dtype=np.float64)
        t_mem = []
        for c in range(2):
            f = np.array([np.nan if r["fractions"][c] is None else r["fractions"][c] for r in rows])
            t_mem.append(threshold_crossing_time(steps, f, threshold=threshold))
        result = {
            "pair": {"sneaker": SNEAKER, "partner": subset.partner, "names": list(names),
                     "sneaker_fraction": subset.sneaker_fraction, "size": int(subset.labels.size),
                     "counts": list(subset.counts)},
            "classes": list(names),
            "classifier": dict(_report_dict(report), cached=cached),
            "complete": len(rows) == len(all_steps),
            "checkpoints": rows,
            "t_mem": {names[0]: t_mem[0], names[1]: t_mem[1]},
            "t_mem_sneaker": t_mem[0], "t_mem_partner": t_mem[1],
            "gap": memorization_gap(t_mem[0], t_mem[1]),
            "log10_gap": log_memorization_gap(t_mem[0], t_mem[1]),
            "reduced": reduced,
            "provenance": provenance("diffmix ddpm memorization", parameters),
        }
        write_json_atomic(run_dir / MEMORIZATION_JSON, result)
        write_file_atomic(run_dir / MEMORIZATION_CSV, lambda fh: fh.write(_csv(result).encode()))
        return result

    rows = []
    for step in all_steps:
        [(_, samples)] = sample_checkpoints(run_dir, steps=[step], n=n, seed=seed, batch_size=batch_size,
                                            device=device, amp=amp, progress=progress)
        unit = np.clip(subset.to_unit(samples[:, 0]), 0.0, 1.0).reshape(samples.shape[0], -1)
        d1, d2, index1 = nearest_two(unit, train_unit, device=device)
        memorized = memorized_mask(d1, d2, ratio=ratio)
        classes = np.asarray(predict_classes(model, samples, device=device), dtype=np.int64)
        fractions, counts = class_fractions(memorized, classes, n_classes=2)
        lo, hi = bootstrap_fractions(memorized, classes, n_boot=n_boot, seed=seed, level=level, n_classes=2)
        per_class_d = []
        for c in range(2):
            sel = classes == c
            per_class_d.append((float(d1[sel].mean()) if sel.any() else None,
                                float(d2[sel].mean()) if sel.any() else None))
        nearest_label = subset.labels[index1]
        rows.append({
            "step": int(step), "n": int(samples.shape[0]), "n_memorized": int(memorized.sum()),
            "counts": counts.astype(int).tolist(), "fractions": [_finite_or_none(f) for f in fractions],
            "ci_low": [_finite_or_none(f) for f in lo], "ci_high": [_finite_or_none(f) for f in hi],
            "fraction_all": float(memorized.mean()), "mean_d1": float(d1.mean()), "mean_d2": float(d2.mean()),
            "mean_d1_class": [d[0] for d in per_class_d], "mean_d2_class": [d[1] for d in per_class_d],
            "nearest_same_class": float(np.mean(nearest_label == classes)),
        })
        if not quiet:
            print(f"  step {step:>9}: memorized {names[0]} {_fmt(fractions[0])}, {names[1]} {_fmt(fractions[1])} "
                  f"(counts {counts.tolist()})", file=sys.stderr)
        result = write(rows)
    return result


def _trained_steps_note(run_dir: Path) -> list[str]:
    record = _run_record(run_dir)["parameters"]
    done, planned = record.get("n_steps"), record.get("steps")
    if done is None or planned is None or done >= planned:
        return []
    return [f"training stopped at step {done} of the planned {planned} (status {record.get('status')!r})"]


def _fmt(x) -> str:
    return "  n/a" if x is None or not math.isfinite(x) else f"{x:.3f}"


def _csv(result: dict) -> str:
    a, b = ("sneaker", "partner")
    header = ["step", "n", f"count_{a}", f"count_{b}", f"fraction_{a}", f"ci_low_{a}", f"ci_high_{a}",
              f"fraction_{b}", f"ci_low_{b}", f"ci_high_{b}", "fraction_all", "mean_d1", "mean_d2",
              f"mean_d1_{a}", f"mean_d1_{b}", f"mean_d2_{a}", f"mean_d2_{b}"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for r in result["checkpoints"]:
        row = [r["step"], r["n"], *r["counts"], r["fractions"][0], r["ci_low"][0], r["ci_high"][0],
               r["fractions"][1], r["ci_low"][1], r["ci_high"][1], r["fraction_all"], r["mean_d1"], r["mean_d2"],
               *r["mean_d1_class"], *r["mean_d2_class"]]
        writer.writerow(["" if v is None else (repr(v) if isinstance(v, float) else v) for v in row])
    return buffer.getvalue()


def _summary(result: dict) -> str:
    names = result["classes"]
    clf = result["classifier"]
    lines = [f"pair {names[0]} / {names[1]}, Sneaker fraction {result['pair']['sneaker_fraction']}, "
             f"{result['pair']['size']} training images"]
    acc, f1 = clf.get("balanced_accuracy"), clf.get("macro_f1")
    lines.append(f"classifier: balanced accuracy {_fmt(acc)}, macro F1 {_fmt(f1)}"
                 f"{' (cached)' if clf.get('cached') else ''}")
    lines.append(f"{'step':>10} {'n_' + names[0][:8]:>12} {'n_' + names[1][:8]:>12} {'f_' + names[0][:8]:>12} "
                 f"{'f_' + names[1][:8]:>12} {'mean d1':>9} {'mean d2':>9}")
    for r in result["checkpoints"]:
        lines.append(f"{r['step']:>10} {r['counts'][0]:>12} {r['counts'][1]:>12} {_fmt(r['fractions'][0]):>12} "
                     f"{_fmt(r['fractions'][1]):>12} {r['mean_d1']:>9.4f} {r['mean_d2']:>9.4f}")
    t = result["t_mem"]
    lines.append("t_mem: " + ", ".join(f"{k} {'never' if v is None else f'{v:.4g}'}" for k, v in t.items()))
    gap = result["gap"]
    lines.append(f"gap (eq. 147) t_mem^Sneaker - t_mem^partner: {'n/a' if gap is None else f'{gap:.4g}'}"
                 + ("" if result["log10_gap"] is None else f" (log10 ratio {result['log10_gap']:.3f})"))
    if result["reduced"]:
        lines.append("reduced against the paper: " + "; ".join(result["reduced"]))
    return "\n".join(lines)


# ---------------------------------------------------------------------- the command line


def _add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="default auto (cuda if available, else cpu)")
    p.add_argument("--no-amp", action="store_true", help="no bf16 autocast (default: autocast on CUDA)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _add_train(p: argparse.ArgumentParser) -> None:
    from ._ddpm import PAPER_CHECKPOINTS, PAPER_STEPS

    p.add_argument("--partner", type=int, required=True,
                   help="partner label 0..9 other than 7 (Sneaker): " +
                        ", ".join(f"{k} {CLASS_NAMES[k]}" for k in range(10) if k != SNEAKER))
    p.add_argument("--sneaker-fraction", type=float, required=True,
                   help="Sneaker proportion in (0, 1) (paper: 0.25, 0.5, 0.75)")
    p.add_argument("--size", type=int, default=PAPER_SIZE, help=f"training images (default {PAPER_SIZE}, the paper's)")
    p.add_argument("--steps", type=int, default=PAPER_STEPS,
                   help=f"gradient steps (default {PAPER_STEPS}, the paper's scale)")
    p.add_argument("--checkpoints", type=int, default=PAPER_CHECKPOINTS,
                   help=f"log-spaced checkpoints (default {PAPER_CHECKPOINTS}, the paper's)")
    p.add_argument("--config", choices=("paper", "tiny"), default="paper",
                   help="U-Net and schedule: paper (App. J.1, default) or tiny (CPU tests)")
    p.add_argument("--batch-size", type=int, help="images per step (default: the config's, 128 for paper)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default: the config's, 2e-4 for paper)")
    p.add_argument("--seed", type=int, default=0, help="seed of training, sampling and bootstrap (default 0)")
    p.add_argument("--data-seed", type=int, help="seed of the subset draw (default: --seed)")
    p.add_argument("--data", metavar="PATH", default=None,
                   help=f"folder of the four IDX files (.gz or not) or an .npz (default: ${ENV_VAR}, else "
                        "/usr/share/datasets/fashion-mnist)")
    p.add_argument("--out", metavar="RUN_DIR", required=True,
                   help="run directory (created; if it holds a state, the run is resumed)")
    p.add_argument("--checkpoint-steps", metavar="S1,S2,...",
                   help="explicit checkpoint steps, comma-separated, each in 1..--steps (replaces the log-spaced "
                        "schedule of --checkpoints)")
    p.add_argument("--stop-at", type=int, metavar="STEP", help="stop after STEP steps (resume later)")
    p.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="stop this call after SECONDS of training, saving a checkpoint at the last step "
                        "(resume later)")
    p.add_argument("--state-every", type=int, metavar="K",
                   help="write state.pt every K steps (default: every 10 minutes of training)")
    p.add_argument("--compile", action="store_true", help="torch.compile the U-Net (default off)")
    _add_device(p)


def _add_memorization(p: argparse.ArgumentParser, *, with_run: bool) -> None:
    if with_run:
        p.add_argument("--run", metavar="RUN_DIR", required=True, help="run directory of 'diffmix ddpm train'")
        p.add_argument("--seed", type=int, default=0, help="seed of sampling and bootstrap (default 0)")
        p.add_argument("--data", metavar="PATH", default=None,
                       help="Fashion-MNIST location (default: the one recorded in RUN_DIR/run.json)")
        _add_device(p)
    p.add_argument("--n", type=int, default=PAPER_SAMPLES, help=f"samples per checkpoint (default {PAPER_SAMPLES})")
    p.add_argument("--sample-batch", type=int, default=500, help="samples per network call (default 500)")
    p.add_argument("--classifier-epochs", type=int, default=PAPER_CLASSIFIER_EPOCHS,
                   help=f"pair-classifier epochs (default {PAPER_CLASSIFIER_EPOCHS}, App. J.1)")
    p.add_argument("--classifier-size", type=int, metavar="N",
                   help="train the pair classifier on N images of the pair (balanced draw from the 60,000 "
                        "training images, in the run's units) instead of the run's training set (App. J.1); "
                        "for reduced runs whose training set is too small for a classifier")
    p.add_argument("--retrain-classifier", action="store_true", help="ignore a cached RUN_DIR/classifier.pt")
    p.add_argument("--ratio", type=float, default=1.0 / 3.0, help="memorized when d1/d2 < RATIO (default 1/3)")
    p.add_argument("--threshold", type=float, default=1.0 / 3.0,
                   help="t_mem^c: first step with fraction >= THRESHOLD (default 1/3)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates (default 1000)")
    p.add_argument("--level", type=float, default=0.9, help="bootstrap interval coverage (default 0.9)")
    p.add_argument("--json", action="store_true", help="print memorization.json instead of the summary")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diffmix ddpm",
        description="DDPM on a Sneaker-partner pair of Fashion-MNIST (App. J.1): train with log-spaced "
                    "checkpoints, sample, and track per-class memorization.")
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    train = sub.add_parser("train", help="train the U-Net on a pair subset (resumable)",
                           description="Draw the Sneaker-partner subset and train the DDPM of App. J.1 on it. "
                                       "Running the same command again resumes an interrupted run.")
    _add_train(train)
    train.add_argument("--json", action="store_true", help="print a JSON summary of the training call")
    sample = sub.add_parser("sample", help="ancestral samples of checkpoints (cached in RUN_DIR/samples)")
    sample.add_argument("--run", metavar="RUN_DIR", required=True, help="run directory")
    which = sample.add_mutually_exclusive_group()
    which.add_argument("--step", type=int, help="one checkpoint step")
    which.add_argument("--all", action="store_true", help="every checkpoint (the default)")
    sample.add_argument("--n", type=int, default=PAPER_SAMPLES, help=f"samples (default {PAPER_SAMPLES})")
    sample.add_argument("--seed", type=int, default=0, help="seed of the sampler (default 0)")
    sample.add_argument("--sample-batch", type=int, default=500, help="samples per network call (default 500)")
    _add_device(sample)
    memo = sub.add_parser("memorization", help="per-class memorization at every checkpoint",
                          description="Classifier, nearest-neighbour ratio d1/d2, per-class memorized fractions "
                                      "with bootstrap intervals, t_mem^c and the gap of eq. (147); writes "
                                      "RUN_DIR/memorization.json and memorization.csv.")
    _add_memorization(memo, with_run=True)
    track = sub.add_parser("track", help="train, then memorization, in one command",
                           description="'train' followed by 'memorization' on the same run directory.")
    _add_train(track)
    _add_memorization(track, with_run=False)
    return parser


def _check(args) -> None:
    checks = [("--n", getattr(args, "n", 1), 1), ("--sample-batch", getattr(args, "sample_batch", 1), 1),
              ("--seed", getattr(args, "seed", 0), 0)]
    if args.action in ("train", "track"):
        checks += [("--size", args.size, 2), ("--steps", args.steps, 1), ("--checkpoints", args.checkpoints, 1)]
        if args.data_seed is not None:
            checks.append(("--data-seed", args.data_seed, 0))
        if args.batch_size is not None:
            checks.append(("--batch-size", args.batch_size, 1))
        if args.state_every is not None:
            checks.append(("--state-every", args.state_every, 1))
        if args.stop_at is not None and not 1 <= args.stop_at <= args.steps:
            raise ValueError(f"--stop-at = {args.stop_at}: must be an integer in [1, --steps = {args.steps}]")
        if args.time_limit is not None and not (math.isfinite(args.time_limit) and args.time_limit > 0):
            raise ValueError(f"--time-limit = {args.time_limit}: must be a number of seconds > 0")
        if args.checkpoint_steps is not None:
            args.checkpoint_steps = _parse_steps(args.checkpoint_steps, args.steps)
    if args.action in ("memorization", "track"):
        checks += [("--classifier-epochs", args.classifier_epochs, 1), ("--n-boot", args.n_boot, 1)]
        if args.classifier_size is not None:
            checks.append(("--classifier-size", args.classifier_size, 20))
        for flag, value in (("--ratio", args.ratio), ("--threshold", args.threshold)):
            if not (math.isfinite(value) and 0 < value <= 1):
                raise ValueError(f"{flag} = {value}: must be a number in (0, 1]")
        if not 0 < args.level < 1:
            raise ValueError(f"--level = {args.level}: must be a number in (0, 1)")
    for flag, value, minimum in checks:
        if value < minimum:
            raise ValueError(f"{flag} = {value}: must be an integer >= {minimum}")


def _parse_steps(text: str, steps: int) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(not 1 <= v <= steps for v in values):
        raise ValueError(f"--checkpoint-steps = {text!r}: must be comma-separated integers in [1, --steps = {steps}]")
    return sorted(set(values))


def _train(args) -> dict:
    from ._ddpm import DDPMConfig, train_ddpm

    config = DDPMConfig.paper() if args.config == "paper" else DDPMConfig.tiny()
    changes = {}
    if args.batch_size is not None:
        changes["batch_size"] = args.batch_size
    if args.lr is not None:
        changes["lr"] = args.lr
    if changes:
        import dataclasses
        config = dataclasses.replace(config, **changes)
    data_seed = args.seed if args.data_seed is None else args.data_seed
    fmnist = load_fashion_mnist(args.data, verify=False)
    subset = pair_subset(fmnist.x_train, fmnist.y_train, args.partner, sneaker_fraction=args.sneaker_fraction,
                         size=args.size, seed=data_seed, pad_to=config.image_size)
    meta = {
        "data": {"sneaker": SNEAKER, "partner": subset.partner, "names": [CLASS_NAMES[SNEAKER],
                                                                          CLASS_NAMES[subset.partner]],
                 "sneaker_fraction": subset.sneaker_fraction, "size": int(args.size), "data_seed": data_seed,
                 "pad_to": config.image_size, "source": str(Path(fmnist.source).resolve()),
                 "counts": list(subset.counts),
                 "mean": subset.mean, "std": subset.std, "pad": subset.pad},
        "config_name": args.config,
        "reduced": _reduced(config, args.size, args.steps,
                            args.checkpoints if args.checkpoint_steps is None else len(args.checkpoint_steps),
                            args.config, args.time_limit),
        "assumptions": ["Adam lr 2e-4, batch 128 and gradient clipping at 1.0 are Ho et al.'s CIFAR-10 values "
                        "(App. J.1's learning-rate value was lost in extraction)"],
    }
    quiet = getattr(args, "json", False)
    if not quiet:
        print(f"diffmix ddpm train: {CLASS_NAMES[SNEAKER]} / {CLASS_NAMES[subset.partner]}, Sneaker fraction "
              f"{subset.sneaker_fraction}, {args.size} images {subset.counts}, {args.steps} steps, config "
              f"{args.config}, run dir {args.out}", file=sys.stderr)
    result = train_ddpm(subset.images, config, run_dir=args.out, steps=args.steps, seed=args.seed,
                        device=None if args.device == "auto" else args.device, checkpoints=args.checkpoints,
                        checkpoint_steps=args.checkpoint_steps, state_every=args.state_every, stop_at=args.stop_at,
                        time_limit_s=args.time_limit, amp=False if args.no_amp else None,
                        compile=args.compile, resume=True, progress=not args.no_progress, meta=meta)
    tail = result.losses[-min(100, result.losses.size):] if result.losses.size else np.array([np.nan])
    summary = {"run_dir": str(result.run_dir), "n_steps": result.n_steps, "steps": result.steps,
               "completed": result.completed, "message": result.message, "device": result.device,
               "amp": result.amp, "images_per_s": _finite_or_none(result.images_per_s), "wall_s": result.wall_s,
               "loss_last100": _finite_or_none(float(np.mean(tail))), "checkpoints": [s for s, _ in result.checkpoints],
               "reduced": meta["reduced"]}
    if not quiet:
        ips = "n/a" if summary["images_per_s"] is None else f"{summary['images_per_s']:.1f}"
        print(f"  {result.message} on {result.device} (amp {result.amp}); {ips} images/s this call, "
              f"{result.wall_s:.1f} s in all; mean loss of the last 100 steps {summary['loss_last100']}; "
              f"{len(result.checkpoints)} checkpoints in {Path(args.out) / 'checkpoints'}", file=sys.stderr)
    return summary


def ddpm_main(argv: list[str] | None = None) -> int:
    """Entry point of ``diffmix ddpm``; exit status 0, or 2 on bad input or missing data.

    Examples
    --------
    >>> ddpm_main(["train", "--partner", "7", "--sneaker-fraction", "0.5", "--out", "x"])  # doctest: +SKIP
    2
    """
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    prog = f"diffmix ddpm {args.action}: error:"
    try:
        _check(args)
        device = None if args.device == "auto" else args.device
        amp = False if args.no_amp else None
        if args.action == "train":
            summary = _train(args)
            print(json.dumps(summary) if args.json else _train_line(summary))
            return 0
        if args.action == "sample":
            from ._ddpm import sample_checkpoints
            steps = None if args.step is None else [args.step]
            out = sample_checkpoints(args.run, steps=steps, n=args.n, seed=args.seed, batch_size=args.sample_batch,
                                     device=device, amp=amp, progress=not args.no_progress)
            for step, samples in out:
                where = Path(args.run) / "samples" / f"step_{step:08d}.npy"
                print(f"step {step}: {samples.shape[0]} samples in {where}")
            return 0
        run_dir = args.run if args.action == "memorization" else args.out
        if args.action == "track":
            summary = _train(args)
            if not args.json:
                print(_train_line(summary))
            if not summary["completed"]:
                print("diffmix ddpm track: training stopped early (--stop-at or --time-limit); memorization of the "
                      "checkpoints so far", file=sys.stderr)
        result = track_memorization(run_dir, n=args.n, seed=args.seed, batch_size=args.sample_batch,
                                    classifier_epochs=args.classifier_epochs, classifier_size=args.classifier_size,
                                    retrain_classifier=args.retrain_classifier, ratio=args.ratio,
                                    threshold=args.threshold, n_boot=args.n_boot, level=args.level, device=device,
                                    amp=amp, data=args.data if args.action == "memorization" else None,
                                    progress=not args.no_progress, quiet=args.json)
    except (ValueError, FashionMNISTError) as exc:
        print(f"{prog} {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, default=str))
    else:
        print(_summary(result))
        print(f"wrote {Path(run_dir) / MEMORIZATION_JSON} and {MEMORIZATION_CSV}")
    return 0


def _train_line(summary: dict) -> str:
    ips = "n/a" if summary["images_per_s"] is None else f"{summary['images_per_s']:.1f}"
    return (f"trained {summary['n_steps']}/{summary['steps']} steps on {summary['device']} "
            f"({ips} images/s); loss (mean of last 100 steps) {summary['loss_last100']}; "
            f"checkpoints {summary['checkpoints']}; run dir {summary['run_dir']}")
