"""`diffmix edges`: JSON schema, values equal to the solver's, decimal strings with --dps, errors."""
import json

import mpmath
import pytest

from diffmix.__main__ import main
from diffmix.solvers import SpectralParams, find_edges
from diffmix.theory import load_model

from test_cli import EXAMPLES


def test_edges_json_matches_solver(capsys):
    assert main(["edges", str(EXAMPLES / "fig2-variance.toml"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"edges", "atoms", "tau_gen", "tau_mem", "tau_final", "time_unit"}
    spec = find_edges(SpectralParams.from_model(load_model(EXAMPLES / "fig2-variance.toml")))
    assert out["edges"] == spec.edges and out["time_unit"] == "1/lambda"
    assert out["atoms"][0][1] == pytest.approx(29 / 60)
    assert out["tau_mem"] == pytest.approx(22.4177774947656, rel=1e-12)


def test_edges_dps_gives_decimal_strings(capsys):
    assert main(["edges", str(EXAMPLES / "fig2-variance.toml"), "--dps", "25", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    lo = out["edges"][2][0]
    assert isinstance(lo, str) and isinstance(out["tau_gen"], str)
    assert float(lo) == pytest.approx(7.97380217079669, rel=1e-13)
    with mpmath.workdps(30):
        assert abs(1 / mpmath.mpf(lo) - mpmath.mpf(out["tau_gen"])) < mpmath.mpf(10) ** -22


@pytest.mark.parametrize("argv, message", [
    (["missing.toml"], "missing.toml"),
    ([str(EXAMPLES / "fig3-baseline.toml")], "centroid_norm2"),
    ([str(EXAMPLES / "fig2-variance.toml"), "--dps", "5"], r"--dps = 5"),
])
def test_edges_bad_input(argv, message, capsys):
    assert main(["edges", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_polished_timescales_keep_their_precision():
    """With polished edges the timescales are computed from them at the same precision (the
    windows are differences, so a float detour would cost their last digits)."""
    from diffmix.solvers import spectrum
    p = SpectralParams.from_model(load_model(EXAMPLES / "fig2-variance.toml"), dps=35)
    spec = spectrum(p, dps=25)
    ts = spec.timescales
    with mpmath.workdps(40):
        ref = 1 / spec.bulks[-2].upper.lam - 1 / spec.bulks[-1].lower.lam
        assert isinstance(ts["W_gen"], mpmath.mpf)
        assert abs(ts["W_gen"] - ref) <= mpmath.mpf(10) ** -22 * abs(ref)
    assert float(ts["tau_mem"]) == pytest.approx(22.4177774947656, rel=1e-12)
