"""DDPM of App. J.1 (diffmix.gpu._ddpm, diffmix.gpu._ddpm_cli; issue 8 item 2).

Independent checks: the schedule against closed forms and diffusers' DDPMScheduler; the ancestral
sampler on Gaussian data with the exact (oracle) noise predictor, against the exact variance of the
sampler's linear recursion; the paper U-Net's parameter count against a hand count of App. J.1's
blocks; resume against an uninterrupted run (bit-identical on the CPU). The whole pipeline runs
through the CLI on synthetic Fashion-MNIST files (tiny config, a few steps).
"""
import json
import math
import os

import numpy as np
import pytest
import torch

from tolerances import (DDPM_ALPHA_BAR_VS_DIFFUSERS, DDPM_CUDA_RESUME_ATOL, DDPM_LOSS_DROP, DDPM_SAMPLER_BIAS,
                        DDPM_SCHEDULE_VS_DIFFUSERS, DDPM_STEP_VS_DIFFUSERS, MC_SIGMAS)

from diffmix.gpu._ddpm import (DDPMConfig, NoiseSchedule, build_unet, checkpoint_schedule, count_parameters,
                               list_checkpoints, load_unet, sample_ddpm, train_ddpm)

os.environ.setdefault("HF_HUB_OFFLINE", "1")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def blob_images(n=32, seed=0, side=32):
    """Gaussian blobs at random horizontal offsets, values in about [-1, 2] (a learnable toy set)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side]
    shifts = rng.integers(-4, 5, size=n)
    images = [3.0 * np.exp(-((xx - side // 2 - s) ** 2 + (yy - side // 2) ** 2) / 30.0) - 1.0 for s in shifts]
    return np.stack(images)[:, None].astype(np.float32)


# ---------------------------------------------------------------------- schedule


def test_schedule_closed_forms():
    s = NoiseSchedule(1000, 1e-4, 0.02)
    k = np.arange(1000)
    beta = 1e-4 + k * (0.02 - 1e-4) / 999
    np.testing.assert_allclose(s.betas.numpy(), beta, rtol=1e-14, atol=0)
    alpha_bar = np.exp(np.cumsum(np.log1p(-beta)))
    np.testing.assert_allclose(s.alpha_bar.numpy(), alpha_bar, rtol=1e-12)
    np.testing.assert_allclose(s.eps_coef.numpy(), beta / np.sqrt(1 - alpha_bar), rtol=1e-12)
    np.testing.assert_allclose(s.sigma.numpy()[1:], np.sqrt(beta[1:]), rtol=1e-14)
    assert s.sigma[0] == 0.0                     # no noise at the last reverse step
    assert 3e-5 < float(s.alpha_bar[-1]) < 5e-5  # x_T is N(0, I) to 4e-5 in variance
    # add_noise: x_t = sqrt(abar) x0 + sqrt(1 - abar) eps, per sample
    x0, eps = torch.ones(3, 1, 2, 2), torch.full((3, 1, 2, 2), 2.0)
    i = torch.tensor([0, 499, 999])
    x_t = s.add_noise(x0, eps, i)
    expected = np.sqrt(alpha_bar[[0, 499, 999]]) + 2.0 * np.sqrt(1 - alpha_bar[[0, 499, 999]])
    np.testing.assert_allclose(x_t[:, 0, 0, 0].numpy(), expected, rtol=1e-6)


def test_schedule_and_step_against_diffusers():
    from diffusers import DDPMScheduler

    ref = DDPMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
                        variance_type="fixed_large", clip_sample=False, prediction_type="epsilon")
    s = NoiseSchedule(1000, 1e-4, 0.02)
    np.testing.assert_allclose(s.betas.numpy(), ref.betas.double().numpy(), rtol=DDPM_SCHEDULE_VS_DIFFUSERS)
    np.testing.assert_allclose(s.alpha_bar.numpy(), ref.alphas_cumprod.double().numpy(),
                               rtol=DDPM_ALPHA_BAR_VS_DIFFUSERS)
    # One reverse step: diffusers' float32 buffers lose ~3e-4 of 1 - abar at small t (1 - abar_1 = 2e-4), so
    # the step formulas are compared in float64 on our float64 schedule (diffusers goes through x0-hat).
    ref.alphas_cumprod = s.alpha_bar.clone()
    ref.one = torch.tensor(1.0, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 1, 8, 8, generator=g, dtype=torch.float64)
    eps = torch.randn(4, 1, 8, 8, generator=g, dtype=torch.float64)
    for i in (999, 500, 1, 0):
        theirs = ref.step(eps, i, x, generator=torch.Generator().manual_seed(10 + i)).prev_sample
        z = torch.randn(x.shape, generator=torch.Generator().manual_seed(10 + i), dtype=torch.float64)
        ours = s.step(x, eps, i, z)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=0, atol=DDPM_STEP_VS_DIFFUSERS)


def exact_sampler_variance(schedule: NoiseSchedule, s2: float) -> float:
    """Variance after the T ancestral steps with the oracle eps on N(0, s2) data: a scalar recursion."""
    beta, alpha, abar = schedule.betas.numpy(), schedule.alphas.numpy(), schedule.alpha_bar.numpy()
    v = 1.0
    for i in range(schedule.T - 1, -1, -1):
        c = math.sqrt(1 - abar[i]) / (abar[i] * s2 + 1 - abar[i])        # eps* = c x_t
        k = (1 - beta[i] / math.sqrt(1 - abar[i]) * c) / math.sqrt(alpha[i])
        v = k * k * v + (beta[i] if i > 0 else 0.0)
    return v


@pytest.mark.parametrize("s", [0.5, 2.0])
def test_sampler_gaussian_oracle(s):
    """Data N(0, s^2 I): eps*(x_t, t) = sqrt(1 - abar) x_t / (abar s^2 + 1 - abar) is exact; the samples'
    variance must match the sampler's exact variance (M = 2048 x 64 iid values, so the relative standard
    error of the variance is sqrt(2/M) = 0.39 %; MC_SIGMAS of them allowed), and that variance must be s^2
    up to the discretization bias DDPM_SAMPLER_BIAS."""
    schedule = NoiseSchedule(1000, 1e-4, 0.02)
    abar = schedule.alpha_bar.to(torch.float32)

    def oracle(x, i):
        a = abar[i].view(-1, 1, 1, 1)
        return torch.sqrt(1 - a) * x / (a * s * s + 1 - a)

    x = sample_ddpm(oracle, schedule, 2048, seed=1, device="cpu", batch_size=2048, image_shape=(1, 8, 8))
    m = x.size
    v_exact = exact_sampler_variance(schedule, s * s)
    assert abs(v_exact / (s * s) - 1) < DDPM_SAMPLER_BIAS
    v = float(np.mean(x.astype(np.float64) ** 2))
    assert abs(v / v_exact - 1) < MC_SIGMAS * math.sqrt(2.0 / m), (v, v_exact)
    assert abs(float(x.mean())) < MC_SIGMAS * math.sqrt(v_exact / m)


# ---------------------------------------------------------------------- checkpoints and config


def test_checkpoint_schedule_log_spaced_unique():
    for steps, count in [(10 ** 6, 32), (1000, 32), (10, 32), (5, 3), (7, 1)]:
        c = checkpoint_schedule(steps, count)
        assert c.size == min(count, steps)
        assert c[-1] == steps and (c.size == 1 or c[0] == 1)
        assert np.all(np.diff(c) > 0)
    c = checkpoint_schedule(10 ** 6, 32)
    ratios = np.diff(np.log10(c[-10:]))               # away from the integer-rounding region
    np.testing.assert_allclose(ratios, 6 / 31, rtol=1e-2)


def test_config_errors_name_parameter():
    with pytest.raises(ValueError, match=r"image_size = 28: must be divisible by 2\^\(levels - 1\) = 8"):
        DDPMConfig(image_size=28)
    with pytest.raises(ValueError, match=r"attention_heads = 3: must divide"):
        DDPMConfig(attention_heads=3)
    with pytest.raises(ValueError, match=r"attention_levels entry = 4: must be an integer in \[0, 3\]"):
        DDPMConfig(attention_levels=(1, 4))
    with pytest.raises(ValueError, match=r"beta_T = 1e-05: must be >= beta_1"):
        DDPMConfig(beta_T=1e-5)
    with pytest.raises(ValueError, match=r"block_out_channels\[1\] = 100: must be divisible by norm_num_groups"):
        DDPMConfig(block_out_channels=(64, 100, 256, 256))
    cfg = DDPMConfig.tiny()
    assert DDPMConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="unknown key"):
        DDPMConfig.from_dict(dict(cfg.to_dict(), width=3))


def _resnet(c_in, c_out, temb=256):
    n = 2 * c_in + 9 * c_in * c_out + c_out + temb * c_out + c_out + 2 * c_out + 9 * c_out * c_out + c_out
    return n + (c_in * c_out + c_out if c_in != c_out else 0)


def _attention(c):
    return 2 * c + 4 * (c * c + c)              # GroupNorm, q, k, v, out (with biases)


def hand_count_paper_unet():
    """App. J.1's U-Net counted block by block (the diffusers layout of the module docstring)."""
    ch, attn_levels, temb = (64, 128, 256, 256), (1, 2), 256
    n = 64 * temb + temb + temb * temb + temb   # sinusoidal embedding -> two-layer MLP
    n += 9 * 1 * 64 + 64                         # conv_in
    c_prev = 64
    for level, c in enumerate(ch):               # encoder: 2 blocks per level
        for j in range(2):
            n += _resnet(c_prev if j == 0 else c, c)
            n += _attention(c) if level in attn_levels else 0
        n += 9 * c * c + c if level < 3 else 0   # strided-conv downsampling
        c_prev = c
    n += 2 * _resnet(256, 256) + _attention(256)  # bottleneck: (ResNet + attention), ResNet
    rev = ch[::-1]
    prev = rev[0]
    for i, c in enumerate(rev):                  # decoder: 3 blocks per level, skip concatenation
        level = 3 - i
        c_skip_last = rev[min(i + 1, 3)]
        for j in range(3):
            c_in = (prev if j == 0 else c) + (c_skip_last if j == 2 else c)
            n += _resnet(c_in, c)
            n += _attention(c) if level in attn_levels else 0
        n += 9 * c * c + c if i < 3 else 0       # upsampling conv
        prev = c
    n += 2 * 64 + 9 * 64 * 1 + 1                 # output GroupNorm and conv
    return n


def test_paper_unet_structure_and_parameter_count():
    torch.manual_seed(0)
    config = DDPMConfig.paper()
    unet = build_unet(config)
    assert count_parameters(unet) == hand_count_paper_unet() == 25_634_177
    assert [type(b).__name__ for b in unet.down_blocks] == ["DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D",
                                                            "DownBlock2D"]
    assert [type(b).__name__ for b in unet.up_blocks] == ["UpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"]
    assert [len(b.resnets) for b in unet.down_blocks] == [2, 2, 2, 2]
    assert [len(b.resnets) for b in unet.up_blocks] == [3, 3, 3, 3]
    assert len(unet.mid_block.resnets) == 2 and len(unet.mid_block.attentions) == 1
    heads = [m.heads for m in unet.modules() if type(m).__name__ == "Attention"]
    assert heads == [4] * len(heads) and len(heads) == 2 + 2 + 1 + 3 + 3
    drops = [m.dropout.p for m in unet.modules() if type(m).__name__ == "ResnetBlock2D"]
    assert drops == [0.1] * (8 + 2 + 12)          # encoder, bottleneck, decoder
    assert unet.config.time_embedding_type == "positional"
    with torch.no_grad():
        out = unet(torch.zeros(1, 1, 32, 32), torch.tensor([999])).sample
    assert out.shape == (1, 1, 32, 32) and torch.isfinite(out).all()


def test_attention_heads_take_effect():
    """The head count set after construction changes the computation (same weights)."""
    torch.manual_seed(0)
    unet = build_unet(DDPMConfig.tiny()).eval()
    x, i = torch.randn(2, 1, 32, 32), torch.tensor([3, 40])
    for m in unet.modules():                     # make attention matter: random output projections
        if type(m).__name__ == "Attention":
            torch.nn.init.normal_(m.to_out[0].weight, std=1.0)
    with torch.no_grad():
        two = unet(x, i).sample
        for m in unet.modules():
            if type(m).__name__ == "Attention":
                m.heads, m.scale = 1, m.to_q.out_features ** -0.5
        one = unet(x, i).sample
    assert (two - one).abs().max() > 1e-4


def test_channels_last_same_output():
    """NHWC (train_ddpm's CUDA default) computes the same function as NCHW."""
    torch.manual_seed(0)
    unet = build_unet(DDPMConfig.tiny()).eval()
    x, i = torch.randn(3, 1, 32, 32), torch.tensor([0, 20, 49])
    with torch.no_grad():
        nchw = unet(x, i).sample
        nhwc = unet.to(memory_format=torch.channels_last)(x, i).sample
    np.testing.assert_allclose(nhwc.numpy(), nchw.numpy(), rtol=0, atol=1e-5)


# ---------------------------------------------------------------------- training


def _eval_loss(path, images, config):
    model = load_unet(path, device="cpu").model
    schedule = NoiseSchedule.from_config(config)
    g = torch.Generator().manual_seed(123)
    x0 = torch.from_numpy(images).repeat(4, 1, 1, 1)
    i = torch.randint(0, config.T, (x0.shape[0],), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    with torch.no_grad():
        return float(torch.mean((model(schedule.add_noise(x0, eps, i), i).sample - eps) ** 2))


def test_training_decreases_loss(tmp_path):
    config = DDPMConfig.tiny()
    images = blob_images()
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    result = train_ddpm(images, config, run_dir=tmp_path, steps=12, seed=0, device="cpu",
                        checkpoint_steps=[1, 12], progress=False, meta={"what": "blobs"})
    assert torch.equal(torch.rand(1), before)        # the caller's global RNG is left alone
    assert result.completed and result.n_steps == 12 and result.losses.shape == (12,)
    assert np.isfinite(result.losses).all()
    steps = [s for s, _ in list_checkpoints(tmp_path)]
    assert steps == [1, 12]
    first, last = (_eval_loss(p, images, config) for _, p in list_checkpoints(tmp_path))
    assert last < DDPM_LOSS_DROP * first, (first, last)
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["parameters"]["status"] == "completed" and run["parameters"]["meta"] == {"what": "blobs"}
    assert run["parameters"]["config"] == config.to_dict()


def test_resume_is_bit_identical(tmp_path):
    config = DDPMConfig.tiny(batch_size=4)
    images = blob_images(10, seed=1)               # 10 images, batch 4: epochs of 2 batches (remainder dropped)
    kw = dict(steps=6, seed=3, device="cpu", checkpoint_steps=[2, 6], progress=False)
    straight = train_ddpm(images, config, run_dir=tmp_path / "a", **kw)
    first = train_ddpm(images, config, run_dir=tmp_path / "b", stop_at=3, **kw)
    assert not first.completed and first.n_steps == 3
    resumed = train_ddpm(images, config, run_dir=tmp_path / "b", **kw)
    assert resumed.completed and resumed.resumed_from == 3
    np.testing.assert_array_equal(straight.losses, resumed.losses)
    a = torch.load(tmp_path / "a" / "state.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "state.pt", weights_only=True)
    assert a["step"] == b["step"] == 6
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for pa, pb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(pa[k], pb[k]) for k in pa)
    for (sa, pa_), (sb, pb_) in zip(list_checkpoints(tmp_path / "a"), list_checkpoints(tmp_path / "b")):
        assert sa == sb
        wa, wb = torch.load(pa_, weights_only=True)["model"], torch.load(pb_, weights_only=True)["model"]
        assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_time_limit_stops_with_a_checkpoint_and_resumes(tmp_path):
    config = DDPMConfig.tiny(batch_size=4)
    images = blob_images(10, seed=1)
    kw = dict(steps=5, seed=3, device="cpu", checkpoint_steps=[5], progress=False)
    straight = train_ddpm(images, config, run_dir=tmp_path / "a", **kw)
    # a limit shorter than one step: the call stops after step 1 and saves it as an extra checkpoint
    first = train_ddpm(images, config, run_dir=tmp_path / "b", time_limit_s=1e-9, **kw)
    assert not first.completed and first.n_steps == 1 and "time_limit_s" in first.message
    assert [s for s, _ in list_checkpoints(tmp_path / "b")] == [1]
    run = json.loads((tmp_path / "b" / "run.json").read_text())["parameters"]
    assert run["status"] == "time limit" and run["time_limit_s"] == 1e-9 and run["n_steps"] == 1
    resumed = train_ddpm(images, config, run_dir=tmp_path / "b", **kw)
    assert resumed.completed and resumed.resumed_from == 1
    assert [s for s, _ in list_checkpoints(tmp_path / "b")] == [1, 5]
    np.testing.assert_array_equal(straight.losses, resumed.losses)
    # a generous limit changes nothing
    again = train_ddpm(images, config, run_dir=tmp_path / "c", time_limit_s=3600.0, **kw)
    assert again.completed
    np.testing.assert_array_equal(straight.losses, again.losses)
    for bad in (0.0, -1.0, float("nan"), "60"):
        with pytest.raises(ValueError, match=r"time_limit_s = .*: must be a finite number of seconds > 0"):
            train_ddpm(images, config, run_dir=tmp_path / "d", time_limit_s=bad, **kw)


def test_training_errors_name_parameter(tmp_path):
    config = DDPMConfig.tiny()
    good = blob_images(8)
    with pytest.raises(ValueError, match=r"images: shape \(8, 28, 28\); expected \(N, 1, 32, 32\)"):
        train_ddpm(np.zeros((8, 28, 28), np.float32), config, run_dir=tmp_path, steps=1, seed=0, device="cpu")
    with pytest.raises(ValueError, match=r"images: shape \(8, 1, 28, 28\); expected \(N, 1, 32, 32\)"):
        train_ddpm(np.zeros((8, 1, 28, 28), np.float32), config, run_dir=tmp_path, steps=1, seed=0, device="cpu")
    with pytest.raises(ValueError, match=r"steps = 0: must be an integer >= 1"):
        train_ddpm(good, config, run_dir=tmp_path, steps=0, seed=0, device="cpu")
    with pytest.raises(ValueError, match=r"config.batch_size = 8: must be in \[1, N = 4\]"):
        train_ddpm(good[:4], config, run_dir=tmp_path, steps=1, seed=0, device="cpu")
    with pytest.raises(ValueError, match=r"checkpoint_steps entry = 5: must be an integer in \[1, 2\]"):
        train_ddpm(good, config, run_dir=tmp_path, steps=2, seed=0, device="cpu", checkpoint_steps=[1, 5])
    with pytest.raises(ValueError, match=r"stop_at = 3: must be an integer in \[1, 2\]"):
        train_ddpm(good, config, run_dir=tmp_path, steps=2, seed=0, device="cpu", stop_at=3)
    train_ddpm(good, config, run_dir=tmp_path, steps=1, seed=0, device="cpu", progress=False)
    with pytest.raises(ValueError, match="already holds state.pt"):
        train_ddpm(good, config, run_dir=tmp_path, steps=1, seed=0, device="cpu", resume=False)
    with pytest.raises(ValueError, match=r"resume: seed = 1 differs from the run's 0"):
        train_ddpm(good, config, run_dir=tmp_path, steps=1, seed=1, device="cpu")


# ---------------------------------------------------------------------- the pipeline through the CLI


def fake_fashion_mnist(path, per_class=12, seed=0):
    """An .npz in the Keras layout; Sneaker (7) and Bag (8) get distinct shapes plus noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    shapes = {7: ((yy > 14) & (xx > 3) & (xx < 25)), 8: ((yy > 6) & (yy < 24) & (xx > 6) & (xx < 22))}
    y = np.repeat(np.arange(10, dtype=np.uint8), per_class)
    x = rng.integers(0, 40, (y.size, 28, 28)).astype(np.int64)
    for label, mask in shapes.items():
        x[y == label] += 200 * mask
    x = np.clip(x, 0, 255).astype(np.uint8)
    np.savez(path, x_train=x, y_train=y, x_test=x[:10], y_test=y[:10])
    return path


MEMORIZATION_KEYS = {"pair", "classes", "classifier", "complete", "checkpoints", "t_mem", "t_mem_sneaker",
                     "t_mem_partner", "gap", "log10_gap", "reduced", "provenance"}
CHECKPOINT_KEYS = {"step", "n", "n_memorized", "counts", "fractions", "ci_low", "ci_high", "fraction_all",
                   "mean_d1", "mean_d2", "mean_d1_class", "mean_d2_class", "nearest_same_class"}


def test_cli_track_smoke(tmp_path, capsys):
    from diffmix.gpu._ddpm_cli import ddpm_main, load_run_subset

    data = fake_fashion_mnist(tmp_path / "fmnist.npz")
    run = tmp_path / "run"
    argv = ["track", "--partner", "8", "--sneaker-fraction", "0.5", "--size", "16", "--steps", "4",
            "--checkpoints", "2", "--config", "tiny", "--data", str(data), "--out", str(run), "--n", "8",
            "--sample-batch", "8", "--classifier-epochs", "1", "--n-boot", "50", "--device", "cpu",
            "--no-progress", "--json"]
    assert ddpm_main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    on_disk = json.loads((run / "memorization.json").read_text())
    assert set(result) == set(on_disk) == MEMORIZATION_KEYS
    assert [r["step"] for r in result["checkpoints"]] == [1, 4]
    for row in result["checkpoints"]:
        assert set(row) == CHECKPOINT_KEYS and row["n"] == 8 and sum(row["counts"]) == 8
        assert all(f is None or 0.0 <= f <= 1.0 for f in row["fractions"])
    assert result["classes"] == ["Sneaker", "Bag"]
    assert {"balanced_accuracy", "macro_f1"} <= set(result["classifier"])
    assert any("training-set size 16" in note for note in result["reduced"])
    csv_lines = (run / "memorization.csv").read_text().splitlines()
    assert len(csv_lines) == 3 and csv_lines[0].startswith("step,n,")
    samples = np.load(run / "samples" / "step_00000004.npy")
    assert samples.shape == (8, 1, 32, 32) and samples.dtype == np.float32
    # the run dir alone rebuilds the subset; sampling and the classifier are cached on a second call
    subset = load_run_subset(run)
    assert subset.counts == (8, 8) and subset.partner == 8
    mtime = (run / "samples" / "step_00000004.npy").stat().st_mtime_ns
    assert ddpm_main(["memorization", "--run", str(run), "--n", "8", "--sample-batch", "8", "--n-boot", "50",
                      "--device", "cpu", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "t_mem" in out and "(cached)" in out
    assert (run / "samples" / "step_00000004.npy").stat().st_mtime_ns == mtime
    # bad input: exit status 2, the flag named
    assert ddpm_main(["train", "--partner", "7", "--sneaker-fraction", "0.5", "--config", "tiny", "--data",
                      str(data), "--out", str(tmp_path / "bad")]) == 2
    assert "partner = 7" in capsys.readouterr().err


def test_cli_reduced_run_options(tmp_path, capsys, monkeypatch):
    """--checkpoint-steps, --time-limit, --classifier-size and the per-checkpoint memorization.json."""
    import diffmix.gpu._ddpm as ddpm_module
    from diffmix.gpu._ddpm_cli import ddpm_main, load_run_subset

    data = fake_fashion_mnist(tmp_path / "fmnist.npz")
    run = tmp_path / "run"
    assert ddpm_main(["train", "--partner", "8", "--sneaker-fraction", "0.25", "--size", "8", "--steps", "3",
                      "--checkpoint-steps", "3,1", "--config", "tiny", "--batch-size", "4", "--data", str(data),
                      "--out", str(run), "--device", "cpu", "--no-progress", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["checkpoints"] == [1, 3] and summary["completed"]
    assert any("2 checkpoints instead of 32" in note for note in summary["reduced"])
    # the classifier's own images, standardized in the run's units
    subset = load_run_subset(run, data=str(data))
    np.testing.assert_allclose(subset.standardize(subset.pixels), subset.images, atol=1e-6)
    with pytest.raises(ValueError, match=r"pixels: float64 array of shape \(2, 28, 28\)"):
        subset.standardize(np.zeros((2, 28, 28)))
    # an evaluation interrupted after the first checkpoint leaves a partial memorization.json
    real = ddpm_module.sample_checkpoints
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(kwargs["steps"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(ddpm_module, "sample_checkpoints", interrupted)
    argv = ["memorization", "--run", str(run), "--data", str(data), "--n", "6", "--sample-batch", "6",
            "--classifier-size", "20", "--classifier-epochs", "1", "--n-boot", "20", "--device", "cpu",
            "--no-progress", "--json"]
    with pytest.raises(KeyboardInterrupt):
        ddpm_main(argv)
    partial = json.loads((run / "memorization.json").read_text())
    assert partial["complete"] is False and [r["step"] for r in partial["checkpoints"]] == [1]
    assert (run / "classifier_n20.pt").exists() and not (run / "classifier.pt").exists()
    monkeypatch.setattr(ddpm_module, "sample_checkpoints", real)
    capsys.readouterr()
    assert ddpm_main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["complete"] is True and [r["step"] for r in result["checkpoints"]] == [1, 3]
    assert result["classifier"]["cached"] is True
    assert result["provenance"]["parameters"]["classifier_size"] == 20
    # bad input names the flag
    base = ["train", "--partner", "8", "--sneaker-fraction", "0.5", "--size", "8", "--steps", "3", "--config",
            "tiny", "--data", str(data), "--out", str(tmp_path / "bad")]
    assert ddpm_main(base + ["--checkpoint-steps", "0,2"]) == 2
    assert "--checkpoint-steps = '0,2': must be comma-separated integers in [1, --steps = 3]" in capsys.readouterr().err
    assert ddpm_main(base + ["--time-limit", "-5"]) == 2
    assert "--time-limit = -5.0: must be a number of seconds > 0" in capsys.readouterr().err
    assert ddpm_main(["memorization", "--run", str(run), "--data", str(data), "--classifier-size", "5"]) == 2
    assert "--classifier-size = 5: must be an integer >= 20" in capsys.readouterr().err
    assert ddpm_main(["memorization", "--run", str(run), "--data", str(data), "--classifier-size", "30",
                      "--retrain-classifier", "--device", "cpu", "--no-progress"]) == 2
    assert "--classifier-size = 30: too large for the pair's training images" in capsys.readouterr().err


# ---------------------------------------------------------------------- CUDA


@pytest.mark.gpu
def test_cuda_amp_training_and_resume(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    config = DDPMConfig.paper(batch_size=32)
    images = blob_images(64, seed=2)
    kw = dict(steps=4, seed=0, device="cuda", checkpoint_steps=[2, 4], progress=False)
    straight = train_ddpm(images, config, run_dir=tmp_path / "a", **kw)
    assert straight.amp and straight.completed and np.isfinite(straight.losses).all()
    train_ddpm(images, config, run_dir=tmp_path / "b", stop_at=2, **kw)
    resumed = train_ddpm(images, config, run_dir=tmp_path / "b", **kw)
    assert resumed.resumed_from == 2 and resumed.completed
    np.testing.assert_array_equal(straight.losses[:2], resumed.losses[:2])
    a = torch.load(tmp_path / "a" / "state.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "state.pt", weights_only=True)["model"]
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    print(f"CUDA resume: max |w_straight - w_resumed| = {worst:.3e}")
    assert worst < DDPM_CUDA_RESUME_ATOL
    model = load_unet(list_checkpoints(tmp_path / "b")[-1][1], device="cuda").model
    x = sample_ddpm(model, NoiseSchedule.from_config(config), 4, seed=0, batch_size=4)
    assert x.shape == (4, 1, 32, 32) and np.isfinite(x).all()
