"""``diffmix simulate``: explicit GD of the random-features score model at a finite size (dynamics.md §2, §7)."""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from pathlib import Path

import torch

from diffmix._provenance import write_file_atomic
from diffmix.theory import ModelError, load_model

from ._simulate import ETA_E_PAPER, GDResult, build_system, simulate_gd

CURVES_NAME = "curves.csv"
RESULT_NAME = "result.json"


def _curves_csv(result: GDResult) -> str:
    """One row per logged step: step, tau, the means, the errors of the mean iterate, then every run."""
    n_classes = result.test_c.shape[1]
    header = ["step", "tau", "train_mean", "test_mean"] + [f"test_c{c}_mean" for c in range(n_classes)]
    header += ["train_of_mean", "test_of_mean"] + [f"test_c{c}_of_mean" for c in range(n_classes)]
    for r in range(result.runs):
        header += [f"train_r{r}", f"test_r{r}"] + [f"test_c{c}_r{r}" for c in range(n_classes)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    train_mean, test_mean, test_c_mean = result.train_mean, result.test_mean, result.test_c_mean
    for k, step in enumerate(result.steps):
        row = [int(step), repr(float(result.tau[k])), repr(float(train_mean[k])), repr(float(test_mean[k]))]
        row += [repr(float(test_c_mean[c, k])) for c in range(n_classes)]
        row += [repr(float(result.train_of_mean[k])), repr(float(result.test_of_mean[k]))]
        row += [repr(float(result.test_c_of_mean[c, k])) for c in range(n_classes)]
        for r in range(result.runs):
            row += [repr(float(result.train[r, k])), repr(float(result.test[r, k]))]
            row += [repr(float(result.test_c[r, c, k])) for c in range(n_classes)]
        writer.writerow(row)
    return buffer.getvalue()


def _write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``."""
    write_file_atomic(path, lambda f: f.write(text.encode("utf-8")))


def _check_args(args) -> None:
    """Errors naming the command-line parameter, before any work."""
    for flag, value, minimum in (("--d", args.d, 1), ("--steps", args.steps, 1), ("--runs", args.runs, 1),
                                 ("--log-points", args.log_points, 2), ("--seed", args.seed, 0)):
        if value < minimum:
            raise ValueError(f"{flag} = {value}: must be an integer >= {minimum}")
    if args.noise_seed is not None and args.noise_seed < 0:
        raise ValueError(f"--noise-seed = {args.noise_seed}: must be an integer >= 0")
    if not (math.isfinite(args.eta_e) and args.eta_e > 0):
        raise ValueError(f"--eta-e = {args.eta_e}: must be a finite number > 0")
    if args.checkpoint_every is not None and args.checkpoint_every < 1:
        raise ValueError(f"--checkpoint-every = {args.checkpoint_every}: must be an integer >= 1")
    if args.stop_at is not None and not 1 <= args.stop_at <= args.steps:
        raise ValueError(f"--stop-at = {args.stop_at}: must be an integer in [1, --steps = {args.steps}]")
    if args.resume and args.out is None:
        raise ValueError("--resume: needs --out (the directory holding the checkpoint)")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: CUDA is not available on this machine")


def simulate_main(argv: list[str] | None = None) -> int:
    """``diffmix simulate MODEL --d D --steps S``: GD learning curves at one finite size.

    Writes ``curves.csv``, ``result.json``, ``provenance.json`` and ``checkpoint.pt`` into ``--out``.
    Exit status 0, 1 when the run diverged (files still written, flagged), 2 on bad input.
    """
    parser = argparse.ArgumentParser(
        prog="diffmix simulate",
        description="Explicit gradient descent of the random-features score model on the DSM loss at "
                    "one finite size (dynamics.md sections 1-2, 7): full batch, one fresh noise vector per "
                    "sample per step, eta = eta_e d / Delta_t, flow time tau = k eta_e. Train and class test "
                    "errors are evaluated exactly (quadratic form with precomputed matrices) at log-spaced "
                    "steps, for every run and their mean.")
    parser.add_argument("model", help="model file (.toml or .json)")
    parser.add_argument("--d", type=int, required=True, help="data dimension (p = psi_p d, n = psi_n d)")
    parser.add_argument("--steps", type=int, required=True, help="number of GD steps")
    parser.add_argument("--runs", type=int, default=1, help="independent runs (noise streams), default 1")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="default cpu")
    parser.add_argument("--seed", type=int, default=0, help="seed of W and the training set (default 0)")
    parser.add_argument("--noise-seed", type=int, help="seed of the GD noise (default: --seed)")
    parser.add_argument("--eta-e", type=float, default=ETA_E_PAPER,
                        help=f"learning rate in units of d/Delta_t (default {ETA_E_PAPER}, the paper's)")
    parser.add_argument("--log-points", type=int, default=50, help="log-spaced logged steps (default 50)")
    parser.add_argument("--matrices", choices=("exact", "gep"), default="exact",
                        help="loss matrices: exact in the noise (default) or GEP (centered classes)")
    parser.add_argument("--normalize-rows", action="store_true", help="rows of W of norm sqrt(d)")
    parser.add_argument("--float32-features", action="store_true",
                        help="features and noise in float32, A in float64 (faster on a GPU)")
    parser.add_argument("--tf32", action="store_true",
                        help="with --float32-features on CUDA: TF32 tensor-core matrix products (faster, 10-bit mantissas)")
    parser.add_argument("--out", metavar="DIR",
                        help="write curves.csv, result.json, provenance.json and checkpoint.pt here")
    parser.add_argument("--checkpoint-every", type=int, metavar="K",
                        help="checkpoint period in steps (default: a tenth of --steps, with --out)")
    parser.add_argument("--stop-at", type=int, metavar="STEP", help="stop after STEP steps (continue with --resume)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    prog = "diffmix simulate: error:"
    try:
        _check_args(args)
        model = load_model(args.model)
        noise_seed = args.seed if args.noise_seed is None else args.noise_seed
        checkpoint_every = args.checkpoint_every
        if checkpoint_every is None and args.out is not None:
            checkpoint_every = max(1, args.steps // 10)
        system = build_system(model, args.d, seed=args.seed, matrices=args.matrices,
                              normalize_rows=args.normalize_rows, device=args.device)
        result = simulate_gd(system, steps=args.steps, runs=args.runs, eta_e=args.eta_e, noise_seed=noise_seed,
                             log_points=args.log_points,
                             feature_dtype=torch.float32 if args.float32_features else None,
                             allow_tf32=args.tf32,
                             out=args.out, checkpoint_every=checkpoint_every, resume=args.resume,
                             stop_at=args.stop_at, progress=not args.no_progress)
    except (ValueError, ModelError) as exc:
        print(f"{prog} {exc}", file=sys.stderr)
        return 2
    record = result.as_dict()
    record["model_file"] = str(args.model)
    if args.out is not None:
        from diffmix._provenance import write_json_atomic
        out = Path(args.out)
        _write_text_atomic(out / CURVES_NAME, _curves_csv(result))
        write_json_atomic(out / RESULT_NAME, record)
    if args.json:
        print(json.dumps(record))
    else:
        print(f"model {args.model}: d = {result.d}, p = {result.p}, n = {result.n}, {result.runs} run(s) on "
              f"{result.device}, eta_e = {result.eta_e!r} (eta = {result.eta:.6g}), matrices {result.matrices}")
        print(f"  {result.message}; {result.n_steps} steps in {result.wall_s:.1f} s, tau = {result.tau[-1]:.6g}")
        print(f"  final (mean over runs): train {result.train_mean[-1]:.6f}, test {result.test_mean[-1]:.6f}, "
              + ", ".join(f"class {c} {v:.6f}" for c, v in enumerate(result.test_c_mean[:, -1])))
        if args.out is not None:
            print(f"  wrote {Path(args.out) / CURVES_NAME}, {Path(args.out) / RESULT_NAME}, provenance.json, "
                  "checkpoint.pt")
    if result.diverged:
        print(f"diffmix simulate: warning: {result.message}", file=sys.stderr)
        return 1
    return 0
