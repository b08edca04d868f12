"""The `diffmix` command: dispatch, `coefficients` and `emit`, called through main(argv)."""
import json
from pathlib import Path

import pytest

from diffmix.__main__ import main
from diffmix.derivations import centered_coefficients

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_usage_and_unknown_command(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0 and "coefficients" in out and "emit" in out
    code, _, err = run(["frobnicate"], capsys)
    assert code == 2 and "unknown command 'frobnicate'" in err
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.startswith("diffmix ")


def test_coefficients_json(capsys):
    code, out, _ = run(["coefficients", "--activation", "tanh", "--t", "0.01",
                        "--variance", "0.5", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"mu0", "mu1", "a_t", "b_t", "v_t2", "s_t2", "activation", "t", "variance"}
    # gep.md §1 reference table, sigma^2 = 0.5, t = 0.01
    assert data["s_t2"] == pytest.approx(1.2417834766145e-03, rel=1e-12)
    assert data["a_t"] == pytest.approx(7.1593733160150e-01, rel=1e-12)
    assert data["activation"] == "tanh" and data["t"] == 0.01 and data["variance"] == 0.5


def test_coefficients_dps_gives_decimal_strings(capsys):
    code, out, _ = run(["coefficients", "--activation", "relu", "--t", "0.01",
                        "--variance", "0.5", "--dps", "30", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert all(isinstance(data[k], str) for k in ("mu0", "mu1", "a_t", "b_t", "v_t2", "s_t2"))
    ref = centered_coefficients("relu", 0.01, 0.5)
    assert float(data["s_t2"]) == pytest.approx(ref.s_t2, rel=1e-14)
    assert len(data["mu1"].replace("-", "").replace(".", "").split("e")[0]) >= 1


def test_coefficients_model(capsys):
    code, out, _ = run(["coefficients", "--model", str(EXAMPLES / "three-class.toml"), "--json"],
                       capsys)
    assert code == 0
    classes = json.loads(out)["classes"]
    assert [c["variance"] for c in classes] == [1.0, 0.4, 0.1]
    ref = centered_coefficients("erf", 0.05, 0.4)
    assert classes[1]["v_t2"] == pytest.approx(ref.v_t2, rel=1e-15)


def test_coefficients_text_output(capsys):
    code, out, _ = run(["coefficients", "--activation", "erf", "--t", "0.1", "--variance", "1"],
                       capsys)
    assert code == 0 and "s_t2" in out and "closed" in out


@pytest.mark.parametrize("argv, message", [
    (["--activation", "foo", "--t", "0.1", "--variance", "1"], "--activation: .*unknown activation 'foo'"),
    (["--activation", "tanh", "--t", "0", "--variance", "1"], r"--t = 0: must be a finite number > 0"),
    (["--activation", "tanh", "--t", "-0.5", "--variance", "1"], r"--t = -0.5: must be a finite number > 0"),
    (["--activation", "tanh", "--t", "0.1", "--variance", "-1"], r"--variance = -1: must be a finite number > 0"),
    (["--activation", "tanh", "--t", "0.1", "--variance", "inf"], r"--variance = inf: must be a finite number > 0"),
    (["--activation", "tanh", "--variance", "1"], r"--t is required"),
    (["--activation", "tanh", "--t", "0.1", "--variance", "1", "--dps", "3"], r"dps = 3"),
    (["--model", "missing.toml"], r"missing.toml"),
])
def test_coefficients_bad_input(argv, message, capsys):
    code, out, err = run(["coefficients", *argv], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    import re
    assert re.search(message, err), err


def test_coefficients_malformed_model_file(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('activation = "tanh"\nt = 0.1\npsi_p = 2\npsi_n = 1\n'
                   '[[classes]]\nweight = 0.5\nvariance = 1\n')
    code, _, err = run(["coefficients", "--model", str(bad)], capsys)
    assert code == 2 and "sum to 1" in err
    bad.write_text("this is not toml")
    code, _, err = run(["coefficients", "--model", str(bad)], capsys)
    assert code == 2 and "bad.toml" in err


def test_emit_check_and_user_expression(tmp_path, capsys):
    code, out, _ = run(["emit", "--check"], capsys)
    assert code == 0, out
    code, out, _ = run(["emit", "--activation", "x + x**3/10", "--out", str(tmp_path)], capsys)
    assert code == 0 and len(out.split()) == 2 and all(Path(p).exists() for p in out.split())
    code, _, err = run(["emit", "--activation", "x +"], capsys)
    assert code == 2 and "cannot parse" in err


def test_provenance_record_and_atomic_json(tmp_path):
    from diffmix._provenance import provenance, write_json_atomic
    rec = provenance("diffmix test", {"seed": 3})
    assert rec["command"] == "diffmix test" and rec["parameters"] == {"seed": 3}
    assert rec["versions"]["numpy"] and rec["versions"]["diffmix"]
    path = write_json_atomic(tmp_path / "sub" / "p.json", rec)
    assert json.loads(path.read_text())["parameters"] == {"seed": 3}
    assert [p.name for p in path.parent.iterdir()] == ["p.json"]
