"""DDPM on a Sneaker-partner pair of Fashion-MNIST: U-Net, noise schedule, training, ancestral sampler.

The model of the paper's App. J.1 (arXiv 2605.06367; issue 8 item 2): a standard DDPM (Ho et al.
2020, the paper's ref. [22]) with a U-Net backbone, trained on the padded, standardized images of
:class:`~diffmix.gpu.PairSubset` (shape (N, 1, 32, 32)) to predict the noise.

Noise schedule (App. J.1 "Training", "Generation"). Linear betas beta_1 .. beta_T (1e-4 .. 0.02,
T = 1000), alpha_t = 1 - beta_t, abar_t = prod_{s <= t} alpha_s. Forward process
x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps. Training minimizes E ||eps_theta(x_t, t) - eps||^2
(mean over pixels) with t uniform and fresh eps every step. The ancestral sampler starts from
x_T ~ N(0, I) and runs all T reverse steps

    x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps_theta(x_t, t)) / sqrt(alpha_t) + sigma_t z,
    sigma_t^2 = beta_t for t > 1, sigma_1 = 0 (no noise at the last step).

In code the step index is 0-based, i = t - 1 in 0 .. T-1 (the network and diffusers' DDPMScheduler
see i), so ``betas[i]`` is beta_{i+1}.

The U-Net is diffusers' ``UNet2DModel`` built from a config (never from a hub; ``HF_HUB_OFFLINE=1``
is set before diffusers is imported, and diffusers is imported only inside the functions that
need it). How App. J.1's sentences map onto it (:func:`build_unet`):

* "four resolution levels (64, 128, 256, 256 channels)": ``block_out_channels=(64, 128, 256, 256)``
  at 32, 16, 8, 4 pixels. Four levels halve the side three times, so the side must be divisible by
  8: the 28 x 28 images are padded to 32 x 32 (:func:`~diffmix.gpu.pair_subset`).
* "ResNet blocks with a dropout rate of 0.1, conditioned on the diffusion time step through
  sinusoidal time embeddings injected additively into each block": diffusers' ``ResnetBlock2D``
  (GroupNorm, SiLU, conv, + time embedding projection added to the features, GroupNorm, SiLU,
  dropout 0.1, conv, residual), ``time_embedding_type="positional"`` (sinusoidal, then a two-layer
  MLP), ``resnet_time_scale_shift="default"`` (additive).
* "The encoder is comprised of two such blocks per level, and the decoder of three":
  ``layers_per_block=2``; diffusers' up blocks have ``layers_per_block + 1 = 3`` ResNet blocks.
* "Four-head self-attention with GroupNorm pre-normalization ... at the two intermediate
  resolutions": down blocks ``DownBlock2D, AttnDownBlock2D, AttnDownBlock2D, DownBlock2D`` and up
  blocks ``UpBlock2D, AttnUpBlock2D, AttnUpBlock2D, UpBlock2D`` (attention at 16 x 16 and 8 x 8,
  after every ResNet block of those levels; diffusers' ``Attention`` has a GroupNorm before the
  projections and a residual connection). ``UNet2DModel`` takes one head *dimension* for all
  levels (heads = channels / head_dim), which cannot give four heads at both 128 and 256
  channels; :func:`build_unet` therefore sets ``heads = 4`` (and the 1/sqrt(head_dim) scale) on
  every attention module after construction. The projections' shapes do not depend on the number
  of heads, so the parameters are the same; only the split into heads changes.
* "At the deepest level, a two-block bottleneck ..., with self-attention enabled in the first block
  and disabled in the second": diffusers' ``UNetMidBlock2D`` is ResNet -> attention -> ResNet,
  i.e. a (ResNet + attention) block followed by a plain ResNet block; the closest available match
  (its attention also has four heads here).
* Differences that remain: diffusers downsamples with a strided 3 x 3 convolution and upsamples
  with nearest-neighbour + 3 x 3 convolution, as Ho et al.'s U-Net does; the paper does not say
  which resampling it used. GroupNorm has 32 groups.

Hyperparameters the paper does not give (its learning-rate value was lost in extraction): Adam
with lr = 2e-4, batch 128 and gradient-norm clipping at 1.0, the CIFAR-10 values of Ho et al.
(ref. [22], which App. J.1 follows); no EMA of the weights (App. J.1 mentions none).

Speed (``benchmarks/bench_ddpm.py``, one NVIDIA H200, torch 2.11, paper config, batch 128): the
training step is host-bound (about 50 ms per step while the GPU is mostly idle): plain float32
(cuDNN TF32 convolutions) ran 2,130-2,680 images/s (17-21 steps/s), bf16 autocast alone 0.77-0.90x
of that, bf16 with channels-last, fused Adam and cuDNN autotuning (the CUDA default here) 0.97x,
and bf16 + ``torch.compile`` 1.10x. Sampling (eval, batch 500) ran 11,000 (float32) and 14,400
(bf16) network evaluations per second: about 35 s for 500 samples x 1000 steps per checkpoint.

Training state (:func:`train_ddpm`): model weights at log-spaced checkpoint steps
(``run_dir/checkpoints/step_<step, 8 digits>.pt``) and a resumable ``run_dir/state.pt`` (model, Adam,
generator states, step, loss log), written atomically (temporary file + ``os.replace``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import numbers
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import torch

from diffmix._provenance import write_file_atomic

__all__ = ["Checkpoint", "DDPMConfig", "DDPMTrainResult", "NoiseSchedule", "build_unet", "checkpoint_schedule",
           "count_parameters", "list_checkpoints", "load_unet", "sample_checkpoints", "sample_ddpm", "train_ddpm",
           "training_throughput"]

#: File and folder names inside a run directory.
STATE_NAME = "state.pt"
RUN_NAME = "run.json"
CHECKPOINT_DIR = "checkpoints"
_CHECKPOINT_RE = re.compile(r"^step_(\d{8})\.pt$")
_FORMAT = 1
#: The paper's scale of training (App. J.1: about 1e6 gradient steps, 32 log-spaced checkpoints).
PAPER_STEPS = 1_000_000
PAPER_CHECKPOINTS = 32


# ---------------------------------------------------------------------- small checks


def _check_int(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    if (not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_)) or value < minimum
            or (maximum is not None and value > maximum)):
        allowed = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} = {value!r}: must be an integer {allowed}")
    return int(value)


def _check_real(name: str, value: object, low: float, high: float, *, low_open: bool = True,
                high_open: bool = True) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} = {value!r}: must be a number in {interval}")
    return float(value)


def _resolve_device(device: torch.device | str | None) -> torch.device:
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device = {str(device)!r}: CUDA is not available on this machine")
    return device


def _atomic_torch_save(obj: Any, path: Path) -> None:
    write_file_atomic(path, lambda f: torch.save(obj, f))


# ---------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class DDPMConfig:
    """Architecture, noise schedule and optimizer of a DDPM run (App. J.1; see the module docstring).

    Attributes
    ----------
    block_out_channels : tuple of int
        Channels per resolution level, finest first (paper: 64, 128, 256, 256). The number of levels
        L = len(block_out_channels); the side is halved L - 1 times.
    layers_per_block : int
        ResNet blocks per encoder level (paper: 2); the decoder has one more per level.
    attention_levels : tuple of int
        Levels (0 = finest) whose blocks carry self-attention (paper: the two intermediate ones, (1, 2)).
    attention_heads : int
        Heads of every attention (paper: 4); must divide the channels of every level with attention
        and of the deepest level (bottleneck attention).
    dropout : float
        In the ResNet blocks (paper: 0.1).
    norm_num_groups : int
        GroupNorm groups; must divide every level's channels (32).
    image_size : int
        Side of the (square) input; divisible by 2^(L-1) (32: the 28 x 28 images padded).
    in_channels : int
        1 (grayscale).
    T : int
        Diffusion steps (paper: 1000).
    beta_1, beta_T : float
        First and last beta of the linear schedule (paper: 1e-4, 0.02).
    lr : float
        Adam learning rate (2e-4, Ho et al.'s CIFAR-10 value; the paper's value was lost).
    batch_size : int
        Images per gradient step (128, Ho et al.'s CIFAR-10 value).
    grad_clip : float or None
        Clip the gradient's global norm at this value (1.0, as Ho et al.); None for no clipping.
    """

    block_out_channels: tuple[int, ...] = (64, 128, 256, 256)
    layers_per_block: int = 2
    attention_levels: tuple[int, ...] = (1, 2)
    attention_heads: int = 4
    dropout: float = 0.1
    norm_num_groups: int = 32
    image_size: int = 32
    in_channels: int = 1
    T: int = 1000
    beta_1: float = 1e-4
    beta_T: float = 0.02
    lr: float = 2e-4
    batch_size: int = 128
    grad_clip: float | None = 1.0

    def __post_init__(self) -> None:
        channels = tuple(self.block_out_channels)
        object.__setattr__(self, "block_out_channels", channels)
        object.__setattr__(self, "attention_levels", tuple(sorted(set(self.attention_levels))))
        if not channels:
            raise ValueError("block_out_channels = (): must name at least one level, e.g. (64, 128, 256, 256)")
        for k, c in enumerate(channels):
            _check_int(f"block_out_channels[{k}]", c, 1)
        levels = len(channels)
        _check_int("layers_per_block", self.layers_per_block, 1)
        for level in self.attention_levels:
            _check_int("attention_levels entry", level, 0, levels - 1)
        heads = _check_int("attention_heads", self.attention_heads, 1)
        groups = _check_int("norm_num_groups", self.norm_num_groups, 1)
        for k, c in enumerate(channels):
            if c % groups:
                raise ValueError(f"block_out_channels[{k}] = {c}: must be divisible by norm_num_groups = {groups}")
        for level in set(self.attention_levels) | {levels - 1}:
            if channels[level] % heads:
                raise ValueError(f"attention_heads = {heads}: must divide the channels {channels[level]} of level "
                                 f"{level} (levels with attention and the bottleneck)")
        _check_real("dropout", self.dropout, 0.0, 1.0, low_open=False)
        side = _check_int("image_size", self.image_size, 2 ** (levels - 1))
        factor = 2 ** (levels - 1)
        if side % factor:
            raise ValueError(f"image_size = {side}: must be divisible by 2^(levels - 1) = {factor} for "
                             f"{levels} resolution levels (e.g. pad 28 x 28 images to {-(-28 // factor) * factor})")
        _check_int("in_channels", self.in_channels, 1)
        _check_int("T", self.T, 1)
        _check_real("beta_1", self.beta_1, 0.0, 1.0)
        _check_real("beta_T", self.beta_T, 0.0, 1.0)
        if self.beta_T < self.beta_1:
            raise ValueError(f"beta_T = {self.beta_T!r}: must be >= beta_1 = {self.beta_1!r}")
        _check_real("lr", self.lr, 0.0, math.inf)
        _check_int("batch_size", self.batch_size, 1)
        if self.grad_clip is not None:
            _check_real("grad_clip", self.grad_clip, 0.0, math.inf)

    @property
    def levels(self) -> int:
        """Number of resolution levels L."""
        return len(self.block_out_channels)

    @classmethod
    def paper(cls, **changes: Any) -> DDPMConfig:
        """App. J.1's architecture and schedule (the defaults), with optional changes."""
        return dataclasses.replace(cls(), **changes)

    @classmethod
    def tiny(cls, **changes: Any) -> DDPMConfig:
        """A CPU-test configuration: the paper's structure (four levels, attention at levels 1-2, a
        bottleneck with attention) at 8-16 channels, one ResNet block per level, and T = 50 with betas
        2e-3 .. 0.4 (twenty times the paper's, so abar_T ~ 4e-5 as for T = 1000: about the same
        continuous schedule at a twentieth of the steps), batch 8, lr 1e-3."""
        base = cls(block_out_channels=(8, 16, 16, 16), layers_per_block=1, attention_heads=2, dropout=0.1,
                   norm_num_groups=4, T=50, beta_1=2e-3, beta_T=0.4, lr=1e-3, batch_size=8)
        return dataclasses.replace(base, **changes)

    def to_dict(self) -> dict:
        """A JSON-ready dictionary (tuples as lists)."""
        out = dataclasses.asdict(self)
        out["block_out_channels"] = list(self.block_out_channels)
        out["attention_levels"] = list(self.attention_levels)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> DDPMConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"DDPMConfig: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(names))})")
        data = dict(data)
        for key in ("block_out_channels", "attention_levels"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


# ---------------------------------------------------------------------- the U-Net


def _import_unet():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from diffusers import UNet2DModel
    return UNet2DModel


def _attention_modules(model: torch.nn.Module) -> list[torch.nn.Module]:
    from diffusers.models.attention_processor import Attention
    return [m for m in model.modules() if isinstance(m, Attention)]


def build_unet(config: DDPMConfig) -> torch.nn.Module:
    """diffusers' ``UNet2DModel`` with App. J.1's structure (module docstring), fresh weights.

    The global torch RNG initializes the weights (seed it, e.g. ``torch.manual_seed``, for a
    reproducible draw). Every attention module gets ``config.attention_heads`` heads.

    Parameters
    ----------
    config : DDPMConfig

    Returns
    -------
    torch.nn.Module
        Called as ``model(x, i).sample`` with x (B, in_channels, S, S) and i (B,) 0-based steps.

    Examples
    --------
    >>> unet = build_unet(DDPMConfig.tiny())  # doctest: +SKIP
    >>> unet(torch.zeros(2, 1, 32, 32), torch.tensor([0, 49])).sample.shape  # doctest: +SKIP
    torch.Size([2, 1, 32, 32])

    (Skipped in the doctest run: importing diffusers takes a few seconds; ``tests/test_gpu_ddpm.py``
    builds and runs both configurations.)
    """
    UNet2DModel = _import_unet()
    down, up = [], []
    for level in range(config.levels):
        down.append("AttnDownBlock2D" if level in config.attention_levels else "DownBlock2D")
    for level in reversed(range(config.levels)):
        up.append("AttnUpBlock2D" if level in config.attention_levels else "UpBlock2D")
    model = UNet2DModel(
        sample_size=config.image_size, in_channels=config.in_channels, out_channels=config.in_channels,
        time_embedding_type="positional", down_block_types=tuple(down), up_block_types=tuple(up),
        mid_block_type="UNetMidBlock2D", block_out_channels=config.block_out_channels,
        layers_per_block=config.layers_per_block, dropout=config.dropout, act_fn="silu",
        attention_head_dim=config.block_out_channels[-1] // config.attention_heads,
        norm_num_groups=config.norm_num_groups, resnet_time_scale_shift="default", add_attention=True)
    for attn in _attention_modules(model):
        inner = attn.to_q.out_features
        attn.heads = config.attention_heads
        attn.sliceable_head_dim = config.attention_heads
        attn.scale = (inner // config.attention_heads) ** -0.5 if attn.scale_qk else 1.0
    return model


def count_parameters(model: torch.nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _eps(model: Callable, x: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
    out = model(x, i)
    if hasattr(out, "sample"):
        out = out.sample
    elif isinstance(out, (tuple, list)):
        out = out[0]
    return out


# ---------------------------------------------------------------------- the noise schedule


class NoiseSchedule:
    """The linear DDPM schedule (App. J.1): float64 buffers computed once.

    Parameters
    ----------
    T : int
        Number of steps (>= 1).
    beta_1, beta_T : float
        0 < beta_1 <= beta_T < 1.

    Attributes
    ----------
    betas, alphas, alpha_bar : Tensor, shape (T,), float64, CPU
        beta_t = linspace(beta_1, beta_T, T), alpha_t = 1 - beta_t, abar_t = cumprod(alpha) (index
        i = t - 1).
    sqrt_alpha_bar, sqrt_one_minus_alpha_bar : Tensor, shape (T,), float64
    eps_coef : Tensor, shape (T,), float64
        beta_t / sqrt(1 - abar_t), the coefficient of eps_theta in the reverse step.
    sigma : Tensor, shape (T,), float64
        sqrt(beta_t), with sigma = 0 at i = 0 (no noise at the last step).

    Examples
    --------
    >>> s = NoiseSchedule(1000, 1e-4, 0.02)
    >>> float(s.betas[0]), float(s.betas[-1]), round(float(s.alpha_bar[-1]), 8)
    (0.0001, 0.02, 4.036e-05)
    """

    def __init__(self, T: int, beta_1: float, beta_T: float) -> None:
        self.T = _check_int("T", T, 1)
        self.beta_1 = _check_real("beta_1", beta_1, 0.0, 1.0)
        self.beta_T = _check_real("beta_T", beta_T, 0.0, 1.0)
        if beta_T < beta_1:
            raise ValueError(f"beta_T = {beta_T!r}: must be >= beta_1 = {beta_1!r}")
        self.betas = torch.linspace(self.beta_1, self.beta_T, self.T, dtype=torch.float64)
        self.alphas = 1.0 - self.betas
        self.alpha_bar = torch.cumprod(self.alphas, dim=0)
        self.sqrt_alpha_bar = torch.sqrt(self.alpha_bar)
        self.sqrt_one_minus_alpha_bar = torch.sqrt(1.0 - self.alpha_bar)
        self.eps_coef = self.betas / self.sqrt_one_minus_alpha_bar
        self.sqrt_recip_alpha = 1.0 / torch.sqrt(self.alphas)
        sigma = torch.sqrt(self.betas)
        sigma[0] = 0.0
        self.sigma = sigma
        self._cache: dict[tuple[str, torch.dtype], dict[str, torch.Tensor]] = {}

    @classmethod
    def from_config(cls, config: DDPMConfig) -> NoiseSchedule:
        return cls(config.T, config.beta_1, config.beta_T)

    def _on(self, device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        key = (str(device), dtype)
        if key not in self._cache:
            names = ("sqrt_alpha_bar", "sqrt_one_minus_alpha_bar", "eps_coef", "sqrt_recip_alpha", "sigma")
            self._cache[key] = {name: getattr(self, name).to(device=device, dtype=dtype) for name in names}
        return self._cache[key]

    def _check_index(self, i: torch.Tensor | int, n: int, device: torch.device) -> torch.Tensor:
        i = torch.as_tensor(i, device=device, dtype=torch.long)
        if i.ndim == 0:
            i = i.expand(n)
        return i

    def add_noise(self, x0: torch.Tensor, eps: torch.Tensor, i: torch.Tensor | int) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, per sample (i: (B,) or scalar, 0-based).

        Coefficients are taken in x0's dtype on x0's device.
        """
        c = self._on(x0.device, x0.dtype)
        i = self._check_index(i, x0.shape[0], x0.device)
        shape = (-1,) + (1,) * (x0.ndim - 1)
        return c["sqrt_alpha_bar"][i].view(shape) * x0 + c["sqrt_one_minus_alpha_bar"][i].view(shape) * eps

    def step(self, x: torch.Tensor, eps_hat: torch.Tensor, i: int, z: torch.Tensor | None) -> torch.Tensor:
        """One ancestral step x_t -> x_{t-1} (module docstring) at the 0-based index i (= t - 1).

        ``z`` ~ N(0, I) like x (ignored, may be None, at i = 0, where no noise is added).
        """
        c = self._on(x.device, x.dtype)
        mean = (x - c["eps_coef"][i] * eps_hat) * c["sqrt_recip_alpha"][i]
        if i == 0:
            return mean
        return mean + c["sigma"][i] * z


# ---------------------------------------------------------------------- checkpoint schedule


def checkpoint_schedule(steps: int, count: int = PAPER_CHECKPOINTS) -> np.ndarray:
    """``min(count, steps)`` log-spaced, strictly increasing steps from 1 to ``steps``.

    Point k is round(steps^(k / (count - 1))), raised to one more than point k - 1 where rounding
    would repeat a step (early on), so no checkpoint is lost to duplicates; the last is ``steps``.

    Examples
    --------
    >>> checkpoint_schedule(1000, 4).tolist()
    [1, 10, 100, 1000]
    >>> checkpoint_schedule(10, 6).tolist()
    [1, 2, 3, 4, 6, 10]
    """
    steps = _check_int("steps", steps, 1)
    count = _check_int("count", count, 1)
    count = min(count, steps)
    if count == 1:
        return np.array([steps], dtype=np.int64)
    target = np.rint(np.geomspace(1.0, float(steps), count)).astype(np.int64)
    out = np.empty(count, dtype=np.int64)
    previous = 0
    for k in range(count):
        c = max(int(target[k]), previous + 1)
        c = min(c, steps - (count - 1 - k))
        out[k] = previous = c
    return out


# ---------------------------------------------------------------------- checkpoints


class Checkpoint(NamedTuple):
    """A U-Net read back from a checkpoint file: the model (eval mode), its config and its step."""

    model: torch.nn.Module
    config: DDPMConfig
    step: int


def _checkpoint_path(run_dir: Path, step: int) -> Path:
    return run_dir / CHECKPOINT_DIR / f"step_{step:08d}.pt"


def list_checkpoints(run_dir: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """The checkpoints of a run, ``[(step, path), ...]`` in increasing step order."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _CHECKPOINT_RE.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def load_unet(path: str | os.PathLike[str], *, device: torch.device | str | None = None) -> Checkpoint:
    """Rebuild the U-Net of a checkpoint file (``checkpoints/step_<step, 8 digits>.pt`` or ``state.pt``).

    Returns
    -------
    Checkpoint
        (model in eval mode on ``device`` (default CUDA if available), config, step).
    """
    device = _resolve_device(device)
    data = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(data, dict) or data.get("format") != _FORMAT or "model" not in data:
        raise ValueError(f"{path}: not a DDPM checkpoint of format {_FORMAT} (written by train_ddpm)")
    config = DDPMConfig.from_dict(data["config"])
    model = build_unet(config)
    model.load_state_dict(data["model"])
    model.to(device).eval()
    return Checkpoint(model, config, int(data["step"]))


# ---------------------------------------------------------------------- training


@dataclass(frozen=True, eq=False)
class DDPMTrainResult:
    """What :func:`train_ddpm` did.

    Attributes
    ----------
    losses : ndarray, shape (n_steps,), float64
        The minibatch loss of every step done so far (steps 1..n_steps; resumed runs included).
    n_steps : int
        Steps done.
    steps : int
        Steps requested.
    checkpoint_steps : ndarray, shape (K,), int64
        The checkpoint schedule of the run.
    checkpoints : list of (int, Path)
        Checkpoint files present now.
    completed : bool
        n_steps == steps.
    resumed_from : int or None
        Step the call resumed from (None for a fresh run).
    images_per_s : float
        Training throughput of this call (steps x batch / wall time of the steps; NaN if none ran).
    wall_s : float
        Seconds of training, summed over resumed calls.
    device : str
    amp : bool
    compiled : bool
    message : str
    run_dir : Path
    """

    losses: np.ndarray
    n_steps: int
    steps: int
    checkpoint_steps: np.ndarray
    checkpoints: list
    completed: bool
    resumed_from: int | None
    images_per_s: float
    wall_s: float
    device: str
    amp: bool
    compiled: bool
    message: str
    run_dir: Path


def _fingerprint(images: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(images, dtype=np.float32).tobytes()).hexdigest()


def _check_images(images: object, config: DDPMConfig) -> np.ndarray:
    array = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    side = config.image_size
    if array.ndim != 4 or array.shape[1] != config.in_channels or array.shape[2:] != (side, side):
        raise ValueError(f"images: shape {array.shape}; expected (N, {config.in_channels}, {side}, {side}) "
                         f"with N >= 1 (config.image_size = {side}; pad 28 x 28 images with pair_subset)")
    if array.shape[0] < 1:
        raise ValueError("images: N = 0 images; need N >= 1")
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"images: dtype {array.dtype}; expected floating-point (standardized) images")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise ValueError("images: contain NaN or infinity")
    return array


def _derived_seeds(seed: int) -> tuple[int, int]:
    """(data/noise generator seed, global-RNG seed for dropout and initialization) from ``seed``."""
    state = np.random.SeedSequence(seed).generate_state(2, np.uint64)
    return int(state[0] >> 1), int(state[1] >> 1)


def _rng_states(device: torch.device) -> dict:
    states = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def _set_rng_states(states: dict, device: torch.device) -> None:
    torch.set_rng_state(states["cpu"])
    if device.type == "cuda":
        torch.cuda.set_rng_state(states["cuda"], device)


class _CudnnBenchmark:
    """Set ``torch.backends.cudnn.benchmark`` for a block (fixed shapes: cuDNN picks its fastest kernels)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __enter__(self) -> None:
        self.saved = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = self.enabled

    def __exit__(self, *exc: object) -> None:
        torch.backends.cudnn.benchmark = self.saved


class _Trainer:
    """One U-Net + Adam + generator; :meth:`step` does one minibatch step (shared by training and timing)."""

    def __init__(self, config: DDPMConfig, data: torch.Tensor, device: torch.device, *, seed: int, amp: bool,
                 compile: bool, channels_last: bool = False, fused: bool = False) -> None:
        self.config, self.data, self.device, self.amp = config, data, device, amp
        self.schedule = NoiseSchedule.from_config(config)
        data_seed, _ = _derived_seeds(seed)
        self.generator = torch.Generator(device=device).manual_seed(data_seed)
        self.model = build_unet(config).to(device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model.train()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, **({"fused": True} if fused else {}))
        self.forward = torch.compile(self.model) if compile else self.model
        self.perm = torch.empty(0, dtype=torch.long, device=device)
        self.pointer = 0
        self.batch = config.batch_size

    def _indices(self) -> torch.Tensor:
        n = self.data.shape[0]
        if self.pointer + self.batch > self.perm.numel():
            self.perm = torch.randperm(n, generator=self.generator, device=self.device)
            self.pointer = 0
        idx = self.perm[self.pointer:self.pointer + self.batch]
        self.pointer += self.batch
        return idx

    def step(self) -> torch.Tensor:
        """One Adam step on a fresh minibatch, timesteps and noise; returns the loss (0-dim, on device)."""
        x0 = self.data[self._indices()]
        i = torch.randint(0, self.config.T, (x0.shape[0],), generator=self.generator, device=self.device)
        eps = torch.randn(x0.shape, generator=self.generator, device=self.device, dtype=x0.dtype)
        x_t = self.schedule.add_noise(x0, eps, i)
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            pred = _eps(self.forward, x_t, i)
        loss = torch.nn.functional.mse_loss(pred.float(), eps)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        return loss.detach()


def train_ddpm(images: np.ndarray | torch.Tensor, config: DDPMConfig, *, run_dir: str | os.PathLike[str],
               steps: int, seed: int, device: torch.device | str | None = None,
               checkpoint_steps: Sequence[int] | None = None, checkpoints: int = PAPER_CHECKPOINTS,
               state_every: int | None = None, state_interval_s: float = 600.0, stop_at: int | None = None,
               time_limit_s: float | None = None, amp: bool | None = None,
               channels_last: bool | None = None, compile: bool = False, resume: bool = True,
               progress: bool = True, meta: dict | None = None) -> DDPMTrainResult:
    """Train the DDPM of App. J.1 on ``images`` with epsilon-prediction MSE and Adam.

    Each step (module docstring): a minibatch of ``config.batch_size`` images (epochs of a random
    permutation, the incomplete last batch of an epoch dropped), one uniform 0-based step i per image,
    fresh eps ~ N(0, I), x_t = sqrt(abar) x0 + sqrt(1 - abar) eps, loss = mean (eps_theta(x_t, i) -
    eps)^2, gradient clipped at ``config.grad_clip``, one Adam step. The permutations, steps and
    noise come from one ``torch.Generator`` on ``device``, seeded from ``seed``; dropout and the
    weight initialization use the global torch RNG, seeded from ``seed`` inside
    ``torch.random.fork_rng`` (the caller's RNG state is left as it was).

    Files in ``run_dir``:

    * ``checkpoints/step_<step, 8 digits>.pt``: {format, config, step, model state dict} at every checkpoint
      step (:func:`load_unet` reads it);
    * ``state.pt``: model, Adam, the generator and global RNG states, the epoch permutation, the step
      and the loss log (about 300 MB for the paper config), written atomically every
      ``state_every`` steps, or (default) after the first step that ends ``state_interval_s``
      seconds after the last write, and at ``stop_at`` and at the end (an interrupted run loses at
      most that much work; when the state is written does not change the numbers).
      ``resume=True`` continues from it; on the
      same device the continued run is bit-identical to an uninterrupted one (CPU; CUDA kernels may
      be nondeterministic);
    * ``run.json``: provenance (:func:`diffmix._provenance.provenance`) with the config, steps,
      seed, checkpoint schedule, device, amp, compile, the data fingerprint and ``meta`` (pair,
      fraction, size, seeds, what is reduced against the paper), updated at the end of each call.

    Parameters
    ----------
    images : array or Tensor, shape (N, in_channels, S, S), floating
        The training set in the units the network sees (``PairSubset.images``); S = config.image_size.
    config : DDPMConfig
    run_dir : path
        Created if missing.
    steps : int
        Total gradient steps (>= 1).
    seed : int
        >= 0.
    device : torch.device or str, optional
        Default CUDA if available, else CPU. The whole training set is moved there.
    checkpoint_steps : sequence of int, optional
        Steps at which to save weights (each in 1..steps); default :func:`checkpoint_schedule` (steps,
        checkpoints).
    checkpoints : int, optional
        Number of log-spaced checkpoints of the default schedule (32, App. J.1).
    state_every : int, optional
        Write ``state.pt`` every this many steps (default: by wall time, ``state_interval_s``).
    state_interval_s : float, optional
        Without ``state_every``: seconds between state writes (default 600).
    stop_at : int, optional
        Stop after this many total steps (1..steps); continue later with ``resume=True``.
    time_limit_s : float, optional
        Wall-clock budget of this call in seconds (> 0): the first step that ends past it is the
        last; its weights are saved as an extra checkpoint (outside the schedule, so a fixed-time
        run still ends with a checkpoint) and the state is written, so ``resume=True`` continues.
    amp : bool, optional
        bf16 autocast of the U-Net's forward (default: on for CUDA, off on CPU). The loss, the
        weights and Adam stay float32.
    channels_last : bool, optional
        NHWC memory format of weights and activations (default: on for CUDA). On CUDA, Adam is the
        fused implementation and cuDNN autotuning (``cudnn.benchmark``) is on during the call.
    compile : bool, optional
        ``torch.compile`` the U-Net (default False).
    resume : bool, optional
        Continue from ``run_dir/state.pt`` if it exists (default True). The config, seed, steps,
        checkpoint schedule, data fingerprint, amp and device type must match. With False, an
        existing state.pt is an error.
    progress : bool, optional
        tqdm progress bar.
    meta : dict, optional
        JSON-ready description of the data, recorded in run.json.

    Returns
    -------
    DDPMTrainResult

    Raises
    ------
    ValueError
        Images not (N, in_channels, S, S) with S = config.image_size, steps < 1, batch_size > N,
        checkpoint steps outside 1..steps, a mismatch on resume, or an existing state with
        ``resume=False``. The message names the parameter and the allowed range.
    """
    from tqdm.auto import tqdm

    if not isinstance(config, DDPMConfig):
        raise ValueError(f"config: must be a DDPMConfig, got {type(config).__name__}")
    array = _check_images(images, config)
    steps = _check_int("steps", steps, 1)
    seed = _check_int("seed", seed, 0)
    n_images = array.shape[0]
    if config.batch_size > n_images:
        raise ValueError(f"config.batch_size = {config.batch_size}: must be in [1, N = {n_images}] (the number of "
                         "training images); use a smaller batch_size or more images")
    if checkpoint_steps is None:
        schedule_steps = checkpoint_schedule(steps, _check_int("checkpoints", checkpoints, 1))
    else:
        schedule_steps = np.unique(np.asarray([_check_int("checkpoint_steps entry", int(s), 1, steps)
                                               for s in checkpoint_steps], dtype=np.int64))
    if state_every is not None:
        state_every = _check_int("state_every", state_every, 1)
    state_interval_s = _check_real("state_interval_s", state_interval_s, 0.0, math.inf)
    end = steps if stop_at is None else _check_int("stop_at", stop_at, 1, steps)
    if time_limit_s is not None and not (isinstance(time_limit_s, numbers.Real) and math.isfinite(time_limit_s)
                                         and time_limit_s > 0):
        raise ValueError(f"time_limit_s = {time_limit_s}: must be a finite number of seconds > 0")
    device = _resolve_device(device)
    amp = (device.type == "cuda") if amp is None else bool(amp)
    channels_last = (device.type == "cuda") if channels_last is None else bool(channels_last)
    run_dir = Path(run_dir)
    state_path = run_dir / STATE_NAME
    fingerprint = _fingerprint(array)
    params = {"config": config.to_dict(), "steps": steps, "seed": seed,
              "checkpoint_steps": schedule_steps.tolist(), "fingerprint": fingerprint, "n_images": n_images,
              "amp": amp, "device_type": device.type}

    state = None
    if state_path.exists():
        if not resume:
            raise ValueError(f"run_dir = {run_dir}: already holds {STATE_NAME}; pass resume=True to continue it or "
                             "choose another directory")
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        if state.get("format") != _FORMAT:
            raise ValueError(f"resume: {state_path} has format {state.get('format')!r}, expected {_FORMAT}")
        for key, value in params.items():
            if state["params"].get(key) != value:
                raise ValueError(f"resume: {key} = {value!r} differs from the run's {state['params'].get(key)!r} "
                                 f"({state_path}); use another run_dir for a different run")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CHECKPOINT_DIR).mkdir(exist_ok=True)

    _, global_seed = _derived_seeds(seed)
    fork_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices), _CudnnBenchmark(device.type == "cuda"):
        torch.manual_seed(global_seed)
        data = torch.from_numpy(array).to(device)
        trainer = _Trainer(config, data, device, seed=seed, amp=amp, compile=compile, channels_last=channels_last,
                           fused=device.type == "cuda")
        losses = torch.zeros(steps, dtype=torch.float32, device=device)
        start, wall_before = 0, 0.0
        if state is not None:
            start, wall_before = int(state["step"]), float(state["wall_s"])
            trainer.model.load_state_dict(state["model"])
            trainer.optimizer.load_state_dict(state["optimizer"])
            trainer.generator.set_state(state["generator"])
            _set_rng_states(state["rng"], device)
            trainer.perm = state["perm"].to(device)
            trainer.pointer = int(state["pointer"])
            losses[:start] = state["losses"][:start].to(device)
        resumed_from = start if state is not None else None

        def record(status: str, n_done: int, wall: float, images_per_s: float) -> None:
            from diffmix._provenance import provenance, write_json_atomic
            record = dict(params, n_steps=n_done, status=status, stop_at=stop_at, time_limit_s=time_limit_s,
                          state_every=state_every, state_interval_s=state_interval_s,
                          resumed_from=resumed_from, device=str(device), compile=bool(compile),
                          channels_last=channels_last, fused_adam=device.type == "cuda",
                          wall_s=wall, meta=meta or {},
                          images_per_s_last_call=images_per_s if math.isfinite(images_per_s) else None)
            write_json_atomic(run_dir / RUN_NAME, provenance("diffmix.gpu.train_ddpm", record))

        def save_state(step: int, wall: float) -> None:
            _atomic_torch_save({"format": _FORMAT, "params": params, "step": step, "wall_s": wall,
                                "model": trainer.model.state_dict(), "optimizer": trainer.optimizer.state_dict(),
                                "generator": trainer.generator.get_state(), "rng": _rng_states(device),
                                "perm": trainer.perm.cpu(), "pointer": trainer.pointer,
                                "losses": losses[:step].detach().cpu().clone()}, state_path)

        def save_checkpoint(step: int) -> None:
            state_dict = {k: v.detach().cpu() for k, v in trainer.model.state_dict().items()}
            _atomic_torch_save({"format": _FORMAT, "config": config.to_dict(), "step": step, "model": state_dict},
                               _checkpoint_path(run_dir, step))

        if start < end:
            record("running", start, wall_before, float("nan"))
        wanted = set(schedule_steps.tolist())
        timed_out = False
        t0 = last_save = time.perf_counter()
        with tqdm(total=steps, initial=start, disable=not progress, unit="step", desc="DDPM",
                  mininterval=1.0) as bar:
            for k in range(start + 1, end + 1):
                losses[k - 1] = trainer.step()
                bar.update(1)
                is_checkpoint = k in wanted
                if is_checkpoint:
                    save_checkpoint(k)
                if k != end and (k % state_every == 0 if state_every is not None
                                 else time.perf_counter() - last_save >= state_interval_s):
                    save_state(k, wall_before + time.perf_counter() - t0)
                    last_save = time.perf_counter()
                if is_checkpoint and progress:
                    bar.set_postfix(loss=f"{float(losses[k - 1]):.4f}")
                if time_limit_s is not None and k < end and time.perf_counter() - t0 >= time_limit_s:
                    end, timed_out = k, True
                    if not is_checkpoint:
                        save_checkpoint(k)
                    break
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed = time.perf_counter() - t0
        n_done = max(end, start)
        images_per_s = (n_done - start) * config.batch_size / elapsed if n_done > start else float("nan")
        wall = wall_before + elapsed
        if n_done > start:
            save_state(n_done, wall)
        completed = n_done >= steps
        record("completed" if completed else ("time limit" if timed_out else "stopped"), n_done, wall, images_per_s)
        loss_log = losses[:n_done].double().cpu().numpy()

    if completed:
        message = f"completed {steps} steps"
    else:
        message = (f"stopped at step {n_done} of {steps} ({'time_limit_s' if timed_out else 'stop_at'}); "
                   "continue with resume=True")
    return DDPMTrainResult(losses=loss_log, n_steps=n_done, steps=steps, checkpoint_steps=schedule_steps,
                           checkpoints=list_checkpoints(run_dir), completed=completed, resumed_from=resumed_from,
                           images_per_s=images_per_s, wall_s=wall, device=str(device), amp=amp,
                           compiled=bool(compile), message=message, run_dir=run_dir)


# ---------------------------------------------------------------------- sampling


@torch.no_grad()
def sample_ddpm(model: Callable, schedule: NoiseSchedule, n: int, *, seed: int,
                device: torch.device | str | None = None, batch_size: int = 500, amp: bool | None = None,
                channels_last: bool = False, image_shape: tuple[int, ...] | None = None,
                progress: bool = False) -> np.ndarray:
    """DDPM ancestral sampling through all T steps (App. J.1 "Generation"; module docstring).

    x_T ~ N(0, I); for i = T-1 .. 0: x <- (x - beta/sqrt(1 - abar) eps_theta(x, i)) / sqrt(alpha)
    + sqrt(beta) z (no noise at i = 0). The state is kept in float32; with ``amp`` the network runs
    under bf16 autocast and its output is cast to float32.

    Batch b (images b*batch_size ...) draws x_T and every z from its own ``torch.Generator`` on
    ``device`` seeded with child b of ``numpy.random.SeedSequence(seed)``, so the samples depend on
    (seed, batch_size, device) only, and the same seed gives the same starting noise at every
    checkpoint of a run (common random numbers across training time).

    Parameters
    ----------
    model : nn.Module or callable
        eps_theta(x, i) with x (B, C, S, S) and i (B,) long 0-based steps; a diffusers model's
        ``.sample`` output is used. An nn.Module is put in eval mode (dropout off) for the call
        and restored after.
    schedule : NoiseSchedule
    n : int
        Number of samples (>= 1).
    seed : int, keyword-only
    device : optional
        Default: the model's device if it has parameters, else CUDA if available, else CPU.
    batch_size : int, keyword-only
        Samples per network call (default 500).
    amp : bool, optional
        bf16 autocast (default: on for CUDA).
    channels_last : bool, optional
        Convert an nn.Module to the NHWC memory format, in place (values unchanged), and autotune
        cuDNN (default False: on an H200 this was 15 % slower than the plain bf16 layout).
    image_shape : tuple, optional
        (C, S, S); default (model.config.in_channels, sample_size, sample_size) of a diffusers model.
    progress : bool, optional

    Returns
    -------
    ndarray, shape (n, C, S, S), float32

    Examples
    --------
    >>> s = NoiseSchedule(10, 0.01, 0.2)
    >>> x = sample_ddpm(lambda x, i: torch.zeros_like(x), s, 3, seed=0, device="cpu", image_shape=(1, 2, 2))
    >>> x.shape, x.dtype
    ((3, 1, 2, 2), dtype('float32'))
    """
    from tqdm.auto import tqdm

    n = _check_int("n", n, 1)
    seed = _check_int("seed", seed, 0)
    batch_size = _check_int("batch_size", batch_size, 1)
    if not isinstance(schedule, NoiseSchedule):
        raise ValueError(f"schedule: must be a NoiseSchedule, got {type(schedule).__name__}")
    is_module = isinstance(model, torch.nn.Module)
    if device is None and is_module:
        first = next(iter(model.parameters()), None)
        device = first.device if first is not None else None
    device = _resolve_device(device)
    amp = (device.type == "cuda") if amp is None else bool(amp)
    if image_shape is None:
        cfg = getattr(model, "config", None)
        if cfg is None:
            raise ValueError("image_shape: needed when model is not a diffusers UNet2DModel, e.g. (1, 32, 32)")
        size = cfg.sample_size if isinstance(cfg.sample_size, int) else tuple(cfg.sample_size)[0]
        image_shape = (cfg.in_channels, size, size)
    image_shape = tuple(int(s) for s in image_shape)
    channels_last = bool(channels_last)
    was_training = model.training if is_module else False
    if is_module:
        model.eval()
        if channels_last:
            model.to(memory_format=torch.channels_last)
    out = np.empty((n,) + image_shape, dtype=np.float32)
    n_batches = -(-n // batch_size)
    children = np.random.SeedSequence(seed).spawn(n_batches)
    try:
        with _CudnnBenchmark(channels_last and device.type == "cuda"), \
                tqdm(total=n_batches * schedule.T, disable=not progress, unit="step", desc="sampling",
                     mininterval=1.0) as bar:
            for b in range(n_batches):
                lo, hi = b * batch_size, min(n, (b + 1) * batch_size)
                g = torch.Generator(device=device).manual_seed(int(children[b].generate_state(1, np.uint64)[0] >> 1))
                x = torch.randn((hi - lo,) + image_shape, generator=g, device=device, dtype=torch.float32)
                for i in range(schedule.T - 1, -1, -1):
                    index = torch.full((hi - lo,), i, device=device, dtype=torch.long)
                    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
                        eps_hat = _eps(model, x, index)
                    z = torch.randn(x.shape, generator=g, device=device, dtype=torch.float32) if i > 0 else None
                    x = schedule.step(x, eps_hat.float(), i, z)
                    bar.update(1)
                out[lo:hi] = x.cpu().numpy()
    finally:
        if is_module and was_training:
            model.train()
    return out


SAMPLES_DIR = "samples"


def _save_npy_atomic(array: np.ndarray, path: Path) -> None:
    write_file_atomic(path, lambda f: np.save(f, array))


def sample_checkpoints(run_dir: str | os.PathLike[str], *, steps: Sequence[int] | None = None, n: int = 500,
                       seed: int = 0, batch_size: int = 500, device: torch.device | str | None = None,
                       amp: bool | None = None, progress: bool = False) -> list[tuple[int, np.ndarray]]:
    """Ancestral samples (:func:`sample_ddpm`) of a run's checkpoints, cached in ``run_dir/samples``.

    The samples of checkpoint s are ``samples/step_<step, 8 digits>.npy`` (n, C, S, S) float32, in the
    network's units, with a sidecar ``step_<step, 8 digits>.json`` {step, n, seed, batch_size, amp, device,
    wall_s}; both are written atomically. A cached file is reused when its n, seed, batch_size and
    amp match, else it is recomputed and replaced. Every checkpoint uses the same ``seed`` (the same
    starting noise).

    Parameters
    ----------
    run_dir : path
    steps : sequence of int, optional
        Checkpoint steps to sample (default: all); each must have a checkpoint file.
    n, seed, batch_size, device, amp, progress
        As for :func:`sample_ddpm` (default n = 500, App. J.1).

    Returns
    -------
    list of (int, ndarray)
        (step, samples) in increasing step order.
    """
    import json

    run_dir = Path(run_dir)
    available = dict(list_checkpoints(run_dir))
    if not available:
        raise ValueError(f"run_dir = {run_dir}: no checkpoints in {run_dir / CHECKPOINT_DIR}")
    if steps is None:
        wanted = sorted(available)
    else:
        wanted = sorted({int(s) for s in steps})
        missing = [s for s in wanted if s not in available]
        if missing:
            raise ValueError(f"steps: no checkpoint at step(s) {missing}; available: {sorted(available)}")
    n = _check_int("n", n, 1)
    seed = _check_int("seed", seed, 0)
    batch_size = _check_int("batch_size", batch_size, 1)
    device = _resolve_device(device)
    amp = (device.type == "cuda") if amp is None else bool(amp)
    folder = run_dir / SAMPLES_DIR
    folder.mkdir(exist_ok=True)
    out = []
    for step in wanted:
        path = folder / f"step_{step:08d}.npy"
        meta_path = path.with_suffix(".json")
        key = {"n": n, "seed": seed, "batch_size": batch_size, "amp": amp}
        if path.exists() and meta_path.exists():
            try:
                cached_meta = json.loads(meta_path.read_text())
            except ValueError:
                cached_meta = {}
            if all(cached_meta.get(k) == v for k, v in key.items()):
                samples = np.load(path)
                if samples.shape[0] == n:
                    out.append((step, samples))
                    continue
        checkpoint = load_unet(available[step], device=device)
        schedule = NoiseSchedule.from_config(checkpoint.config)
        t0 = time.perf_counter()
        samples = sample_ddpm(checkpoint.model, schedule, n, seed=seed, device=device, batch_size=batch_size,
                              amp=amp, progress=progress)
        wall = time.perf_counter() - t0
        _save_npy_atomic(samples, path)
        from diffmix._provenance import write_json_atomic
        write_json_atomic(meta_path, dict(key, step=step, device=str(device), wall_s=wall))
        out.append((step, samples))
        del checkpoint
    return out


# ---------------------------------------------------------------------- throughput


def training_throughput(config: DDPMConfig, *, amp: bool, compile: bool, channels_last: bool = False,
                        fused: bool = False, cudnn_benchmark: bool = False, device: torch.device | str | None = None,
                        steps: int = 20, warmup: int = 5, n_images: int = 1024, seed: int = 0) -> float:
    """Images per second of :func:`train_ddpm`'s training step (same U-Net, Adam, batch) on random data.

    A fresh U-Net is built, ``warmup`` steps are run (they include ``torch.compile``'s compilation
    and cuDNN's autotuning), then ``steps`` steps are timed (CUDA synchronized before and after).
    ``amp``: bf16 autocast; ``compile``: ``torch.compile``; ``channels_last``: NHWC weights and
    activations; ``fused``: fused Adam (CUDA); ``cudnn_benchmark``: cuDNN autotuning. All False is
    the plain float32 eager baseline.

    Returns
    -------
    float
        steps * config.batch_size / seconds.
    """
    device = _resolve_device(device)
    steps = _check_int("steps", steps, 1)
    warmup = _check_int("warmup", warmup, 0)
    n_images = max(_check_int("n_images", n_images, 1), config.batch_size)
    fork_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices), _CudnnBenchmark(cudnn_benchmark):
        torch.manual_seed(seed)
        data = torch.randn((n_images, config.in_channels, config.image_size, config.image_size), device=device)
        trainer = _Trainer(config, data, device, seed=seed, amp=amp, compile=compile, channels_last=channels_last,
                           fused=fused and device.type == "cuda")
        for _ in range(warmup):
            trainer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            trainer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed = time.perf_counter() - t0
    return steps * config.batch_size / elapsed
