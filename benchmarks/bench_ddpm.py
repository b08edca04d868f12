"""Benchmark: DDPM training throughput (images/s) of App. J.1's U-Net, mixed precision against plain fp32.

One training step of ``diffmix.gpu._ddpm`` (minibatch, fresh timesteps and noise, epsilon-MSE,
backward, gradient clipping, Adam) is timed for the same U-Net, batch and data, in one process:

* ``fp32 eager``: the baseline, no autocast, no compilation, PyTorch's default math (on CUDA, cuDNN
  may use TF32 for convolutions: ``torch.backends.cudnn.allow_tf32`` is True by default);
* ``fp32 eager, no TF32``: the same with TF32 switched off everywhere (strict float32);
* ``bf16 autocast``: the forward pass under ``torch.autocast(dtype=torch.bfloat16)`` (what
  ``train_ddpm`` does on CUDA by default);
* ``bf16 + NHWC, fused Adam, autotune``: what ``train_ddpm`` does on CUDA by default: bf16 autocast,
  channels-last weights and activations, fused Adam, ``cudnn.benchmark``;
* the same plus ``torch.compile`` of the U-Net (skipped with --no-compile, reported as failed if
  compilation raises).

Printed per variant: images/s, steps/s, the ratio to the baseline and the extrapolated hours for
the paper's ~1e6 steps. With --sampling, the sampler's network evaluations are timed as well
(eval mode, batch --sample-batch, fp32 vs bf16 autocast) and the time of 500 samples x T steps at
one checkpoint is extrapolated. On CUDA the paper config is used; on the CPU the tiny config (just
to exercise the script).

    python benchmarks/bench_ddpm.py [--steps 30] [--warmup 5] [--batch-size 128] [--no-compile] [--sampling]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import time

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PAPER_STEPS = 1e6


def sampling_rate(config, *, amp: bool, batch: int, device: torch.device, calls: int, tuned: bool = False) -> float:
    """Network evaluations (images) per second in eval mode, no grad (tuned: NHWC + cuDNN autotuning)."""
    from diffmix.gpu._ddpm import _CudnnBenchmark, build_unet

    torch.manual_seed(0)
    model = build_unet(config).to(device).eval()
    if tuned:
        model = model.to(memory_format=torch.channels_last)
    x = torch.randn(batch, config.in_channels, config.image_size, config.image_size, device=device)
    i = torch.full((batch,), config.T // 2, device=device, dtype=torch.long)
    with torch.no_grad(), _CudnnBenchmark(tuned), torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                                                                  enabled=amp):
        for _ in range(3):
            model(x, i)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        for _ in range(calls):
            model(x, i)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return calls * batch / (time.perf_counter() - t0)


def main() -> None:
    from diffmix.gpu._ddpm import DDPMConfig, build_unet, count_parameters, training_throughput

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per variant (default 30)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5; compile included)")
    parser.add_argument("--batch-size", type=int, help="default: the config's (128 for the paper config)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    parser.add_argument("--sampling", action="store_true", help="also time the sampler's network calls")
    parser.add_argument("--sample-batch", type=int, default=500, help="sampler batch (default 500)")
    args = parser.parse_args()

    device = torch.device("cuda" if (args.device == "auto" and torch.cuda.is_available()) else
                          ("cpu" if args.device == "auto" else args.device))
    config = DDPMConfig.paper() if device.type == "cuda" else DDPMConfig.tiny()
    if args.batch_size:
        config = dataclasses.replace(config, batch_size=args.batch_size)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    n_params = count_parameters(build_unet(config))
    print(f"device {name}; torch {torch.__version__}; {'paper' if device.type == 'cuda' else 'tiny'} config, "
          f"{n_params:,} parameters, batch {config.batch_size}, {args.steps} timed steps after {args.warmup}")

    if args.sampling:
        calls = 20 if device.type == "cuda" else 2
        batch = args.sample_batch if device.type == "cuda" else 8
        print(f"sampler network calls, batch {batch}, eval mode:")
        for label, amp, tuned in (("fp32", False, False), ("bf16 autocast", True, False),
                                  ("bf16 + NHWC + cudnn.benchmark", True, True)):
            rate = sampling_rate(config, amp=amp, batch=batch, device=device, calls=calls, tuned=tuned)
            per_checkpoint = 500 * config.T / rate
            print(f"  {label:<30} {rate:>10.1f} images/s -> 500 samples x {config.T} steps: {per_checkpoint:.1f} s "
                  "per checkpoint", flush=True)

    plain = dict(channels_last=False, fused=False, cudnn_benchmark=False)
    tuned = dict(channels_last=True, fused=device.type == "cuda", cudnn_benchmark=device.type == "cuda")
    variants = [("fp32 eager (baseline)", False, False, None, plain),
                ("fp32 eager, no TF32", False, False, False, plain),
                ("bf16 autocast", True, False, None, plain),
                ("bf16 + NHWC, fused Adam, autotune", True, False, None, tuned)]
    if not args.no_compile:
        variants.append(("bf16 + NHWC, ... + torch.compile", True, True, None, tuned))
    print(f"{'training step':<36} {'images/s':>10} {'steps/s':>9} {'vs baseline':>12} {'1e6 steps (h)':>14} "
          f"{'wall (s)':>9}", flush=True)
    base = None
    for label, amp, compile_, tf32, extra in variants:
        saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
        if tf32 is False:
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        t0 = time.perf_counter()
        try:
            rate = training_throughput(config, amp=amp, compile=compile_, device=device, steps=args.steps,
                                       warmup=args.warmup, **extra)
        except Exception as exc:  # compilation can fail on some stacks: report, don't abort
            print(f"{label:<36} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}", flush=True)
            continue
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
        base = rate if base is None else base
        steps_s = rate / config.batch_size
        print(f"{label:<36} {rate:>10.1f} {steps_s:>9.2f} {rate / base:>11.2f}x {PAPER_STEPS / steps_s / 3600:>14.2f} "
              f"{time.perf_counter() - t0:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
