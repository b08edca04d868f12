"""RF-vs-DDPM comparison (validation/_ddpm.py; paper Result 4, Figs. 5-6; issue 8 items 4-5).

Checks: the correlation numbers against NumPy (Pearson = corrcoef, Spearman = corrcoef of ranks);
the RF gap's sign follows Result 2 (the higher-variance class is memorized first) on pairs built with
a partner variance twice and half the Sneaker's (d = 12, psi_p = 10, psi_n = 5, seed 1); fig5 / fig6
through ``diffmix figure`` on synthetic Fashion-MNIST files and synthetic memorization records; fig11's
brute-force nearest neighbours against the record of ``diffmix ddpm memorization`` (a tiny CPU run);
bad input.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from diffmix.gpu import ClassStatistics, pair_model
from diffmix.theory import TIME_UNIT
from diffmix.validation._cli import figure_main
from diffmix.validation._ddpm import gap_correlation, load_ddpm_records, rf_pair_gaps

from test_gpu_ddpm import fake_fashion_mnist
from test_gpu_fmnist import tiny_arrays, write_folder

NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def synthetic_stats(variance_by_label: dict[int, float]) -> ClassStatistics:
    """Ten classes with unit pixel-normalized centroid norms, orthogonal centered centroids."""
    variance = np.full(10, 0.05)
    for k, v in variance_by_label.items():
        variance[k] = v
    cosine = np.eye(10)
    return ClassStatistics(np.arange(10), NAMES, np.full(10, 100), variance, np.full(10, 0.05),
                           cosine[7].copy(), cosine, np.zeros((10, 784)), np.zeros(784), 7)


def test_gap_correlation_against_numpy():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=12), rng.normal(size=12)
    y[:6] += 2 * x[:6]
    r = gap_correlation(list(x) + [None], list(y) + [1.0])
    assert r["n"] == 12
    assert r["pearson"] == pytest.approx(np.corrcoef(x, y)[0, 1], rel=1e-12)
    ranks = lambda v: np.argsort(np.argsort(v))
    assert r["spearman"] == pytest.approx(np.corrcoef(ranks(x), ranks(y))[0, 1], rel=1e-12)
    assert gap_correlation([1.0, 2.0], [3.0, 4.0])["pearson"] is None


def test_rf_gap_sign_follows_the_variance():
    """Result 2: the partner with twice Sneaker's variance is memorized first (gap > 0), the one with half
    of it last (gap < 0); equal centroid norms, orthogonal centroids, balanced pairs."""
    stats = synthetic_stats({7: 0.04, 8: 0.08, 5: 0.02})
    gaps = rf_pair_gaps(stats, [(8, 0.5), (5, 0.5)], d=12, seeds=(1,), psi_p=10.0, psi_n=5.0)
    high, low = gaps
    assert high.name == "Bag" and high.variance_ratio == pytest.approx(2.0)
    assert high.time_unit == TIME_UNIT
    assert high.gap is not None and high.gap > 0
    assert low.gap is not None and low.gap < 0
    # The descriptors are those of pair_model (one common scale: pair mean variance 1).
    model = pair_model(stats, 8, 0.5, t=0.01, psi_p=10.0, psi_n=5.0)
    assert high.centroid_norm2 == pytest.approx(model.centroid_norm2[1], rel=1e-15)
    assert high.gap == pytest.approx(high.tau_mem[0] - high.tau_mem[1], rel=1e-15)


def fake_record(partner: int, fraction: float, scale: float) -> dict:
    steps = [10, 30, 100, 300, 1000]
    f_snk = [0.0, 0.0, 0.1, 0.3, 0.6]
    f_par = [0.0, 0.1, 0.4, 0.7, 0.9]
    rows = [{"step": int(s * scale), "fractions": [a, b], "ci_low": [max(a - 0.05, 0), max(b - 0.05, 0)],
             "ci_high": [a + 0.05, b + 0.05]} for s, a, b in zip(steps, f_snk, f_par)]
    return {"pair": {"sneaker": 7, "partner": partner, "names": ["Sneaker", NAMES[partner]],
                     "sneaker_fraction": fraction},
            "classes": ["Sneaker", NAMES[partner]], "checkpoints": rows,
            "t_mem_sneaker": 350.0 * scale, "t_mem_partner": 80.0 * scale, "gap": 270.0 * scale}


def test_fig5_fig6_from_records(tmp_path, capsys):
    data = write_folder(tmp_path / "data", tiny_arrays(seed=1, per_class_train=4))
    runs = []
    for k, (partner, fraction, scale) in enumerate(((8, 0.5, 1.0), (4, 0.5, 0.5), (8, 0.25, 0.8))):
        run = tmp_path / f"run{k}"
        run.mkdir()
        record = fake_record(partner, fraction, scale)
        if k == 1:
            record["complete"] = False
        (run / "memorization.json").write_text(json.dumps(record))
        runs.append(str(run))
    out5 = tmp_path / "fig5"
    assert figure_main(["fig5", "--runs", *runs, "--data", str(data), "--out", str(out5)]) == 0
    numbers = json.loads((out5 / "fig5.json").read_text())
    assert [r["gap"] for r in numbers["runs"]] == [270.0, 135.0, 216.0]
    assert [r["complete"] for r in numbers["runs"]] == [True, False, True]
    assert "1 with an interrupted evaluation" in capsys.readouterr().out
    assert (out5 / "fig5.png").stat().st_size > 0 and (out5 / "provenance.json").exists()
    out6 = tmp_path / "fig6"
    assert figure_main(["fig6", "--runs", *runs, "--data", str(data), "--out", str(out6), "--d", "2",
                        "--seeds", "1"]) == 0
    numbers = json.loads((out6 / "fig6.json").read_text())
    assert numbers["correlation"]["n"] == sum(r["rf_gap"] is not None for r in numbers["pairs"])
    assert numbers["rf_gap_unit"] == TIME_UNIT and numbers["rf"]["d"] == 2
    assert "Pearson" in capsys.readouterr().out


def test_bad_input(tmp_path, capsys):
    with pytest.raises(ValueError, match="has no memorization.json"):
        load_ddpm_records([tmp_path])
    (tmp_path / "memorization.json").write_text("{}")
    with pytest.raises(ValueError, match="lacks pair"):
        load_ddpm_records([tmp_path])
    assert figure_main(["fig5"]) == 2
    assert "needs --runs" in capsys.readouterr().err
    assert figure_main(["fig8", "--runs", str(tmp_path)]) == 2
    assert "apply to fig5, fig6 and fig11 only" in capsys.readouterr().err


def test_fig11_nearest_neighbours_match_the_record(tmp_path, capsys):
    """fig11 recomputes d1, d2 by brute force for the samples it shows: with all samples shown, the
    memorized count and the mean distances of each checkpoint equal those of memorization.json."""
    from diffmix.gpu._ddpm_cli import ddpm_main
    from diffmix.validation._ddpm import figure_fig11

    data = fake_fashion_mnist(tmp_path / "fmnist.npz")
    run = tmp_path / "run"
    assert ddpm_main(["track", "--partner", "8", "--sneaker-fraction", "0.5", "--size", "16", "--steps", "3",
                      "--checkpoint-steps", "1,3", "--config", "tiny", "--data", str(data), "--out", str(run),
                      "--n", "8", "--sample-batch", "8", "--classifier-epochs", "1", "--n-boot", "20",
                      "--ratio", "0.9", "--device", "cpu", "--no-progress", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    result = figure_fig11(tmp_path / "all", run, data=str(data), n_show=8)
    shown = result.numbers["shown"]
    assert [e["step"] for e in shown] == [1, 3] and result.numbers["ratio"] == 0.9
    for entry, row in zip(shown, record["checkpoints"]):
        assert sum(entry["memorized"]) == row["n_memorized"]
        assert np.mean(entry["d1"]) == pytest.approx(row["mean_d1"], rel=1e-12)
        assert np.mean(entry["d2"]) == pytest.approx(row["mean_d2"], rel=1e-12)
        assert all(a <= b for a, b in zip(entry["d1"], entry["d2"]))
    assert (tmp_path / "all" / "fig11.png").stat().st_size > 0
    # through the CLI, default 6 samples; bad input
    out = tmp_path / "fig11"
    assert figure_main(["fig11", "--runs", str(run), "--data", str(data), "--out", str(out)]) == 0
    assert len(json.loads((out / "fig11.json").read_text())["shown"][0]["d1"]) == 6
    assert figure_main(["fig11", "--runs", str(run), str(run), "--data", str(data)]) == 2
    assert "fig11 draws one run: --runs got 2 folders" in capsys.readouterr().err
    (run / "samples" / "step_00000003.npy").unlink()
    assert figure_main(["fig11", "--runs", str(run), "--data", str(data), "--out", str(out)]) == 2
    assert "step_00000003.npy: no cached samples" in capsys.readouterr().err
    with pytest.raises(ValueError, match="n_show = 0: must be an integer >= 1"):
        figure_fig11(out, run, data=str(data), n_show=0)
