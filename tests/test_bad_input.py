"""Bad input refused before any sampling with exit 2 naming the key, file, row or column (issue 15,
cases 8 and 12): a YAML alias bomb, huge times and log-HRs, subgroup priors, numbers at risk of 0
or 10^7, an unknown --treatment arm, text that is not UTF-8, a folder where a file is expected,
and output folders that cannot be written."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import cli_process, good_frame, run_cli, write_case

ROOT = Path(__file__).resolve().parents[1]
RDATA = ROOT / "configs" / "data"

BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""  # 9 ** 9 = 387 420 489 "lol"s once expanded


def test_the_bomb_is_the_classic_342_bytes():
    assert len(BOMB.encode()) == 342 and BOMB.count("*") == 72


@pytest.mark.parametrize("command", ["check", "run"])
def test_yaml_alias_bomb_is_refused_in_under_a_second(tmp_path, command):
    """Timed without the first import of the command's modules (a shared machine can make that
    alone take seconds); the document itself must cost no more than a small config."""
    cfg = tmp_path / "bomb.yaml"
    cfg.write_text(BOMB)
    (tmp_path / "small.yaml").write_text("name: x\n")
    assert run_cli(command, tmp_path / "small.yaml", "--out", tmp_path / "o").exit_code == 2 \
        if command == "run" else run_cli(command, tmp_path / "small.yaml").exit_code == 2
    t0 = time.perf_counter()
    res = run_cli(command, cfg, *(["--out", tmp_path / "out"] if command == "run" else []))
    elapsed = time.perf_counter() - t0
    assert res.exit_code == 2, res.output
    assert "alias" in res.stderr and "100,000" in res.stderr
    assert elapsed < 1.0, f"{elapsed:.2f} s"
    assert not (tmp_path / "out").exists()


def test_aliases_deep_nesting_and_small_anchors(tmp_path):
    from trialbayes.config.schema import load_config
    from trialbayes.core.errors import ConfigError

    many = "x: &x 1\ny: [" + ", ".join(["*x"] * 101) + "]\n"
    deep = "a: " + "[" * 100 + "]" * 100 + "\n"
    for text, expect in ((many, "more than 100 YAML aliases"), (deep, "nested more than")):
        (tmp_path / "c.yaml").write_text(text)
        with pytest.raises(ConfigError, match=expect):
            load_config(tmp_path / "c.yaml")
    # a few aliases, as a config might use them, are still fine
    cfg = write_case(tmp_path / "ok")
    raw = cfg.read_text().replace("sampler:", "sampler: &s") + "diagnostics: {}\n"
    cfg.write_text(raw)
    assert load_config(cfg).sampler.draws == 200


# ----------------------------------------------------------------------------- 12.


def _reject(res, *expect, out: Path | None = None):
    assert res.exit_code == 2, res.output
    for e in expect:
        assert e in res.stderr, f"{e!r} not in {res.stderr!r}"
    assert out is None or not out.exists() or not any(out.iterdir()), "a rejected input wrote"


def test_a_time_of_1e300_is_refused_naming_the_row(tmp_path):
    df = good_frame()
    df.loc[6, "time"] = 1e300
    cfg = write_case(tmp_path / "in", df)
    _reject(run_cli("run", cfg, "--out", tmp_path / "out"), "'time'", "out of scale", "row 7",
            out=tmp_path / "out")
    df.loc[6, "time"] = 1e5 * df["time"].median()  # long, but within the scale: accepted
    cfg = write_case(tmp_path / "in2", df)
    assert run_cli("check", cfg).exit_code == 0


@pytest.mark.parametrize("estimate,expect", [
    ({"name": "a", "log_hr": 1000, "se": 0.2}, "log_hr 1000"),
    ({"name": "a", "hr": 1e-12, "ci": [1e-13, 0.5]}, "hr 1e-12"),
    ({"name": "a", "hr": 0.8, "ci": [0.5, 1e15]}, "ci"),
    ({"name": "a", "log_hr": -0.2, "se": 1e6}, "SE must be <= 10"),
])
def test_absurd_published_estimates_are_refused(tmp_path, estimate, expect):
    cfg = tmp_path / "pub.yaml"
    cfg.write_text(yaml.safe_dump({"name": "p", "data": {"kind": "published",
                                                         "estimates": [estimate]}}))
    for command in ("check", "run"):
        res = run_cli(command, cfg, *(["--out", tmp_path / "out"] if command == "run" else []))
        _reject(res, "estimates", expect, out=tmp_path / "out")


@pytest.mark.parametrize("mu_prior,expect", [
    ({"family": "student_t", "sigma": 1}, "mu_prior"),
    ({"family": "mixture", "informative": {"family": "normal", "sigma": 1}}, "mu_prior"),
    ({"family": "normal", "sigma": 1e9}, "mu_prior.normal.sigma"),
    ({"family": "normal", "sigma": -1}, "mu_prior.normal.sigma"),
    ({"family": "normal", "mu": 0, "sigma": 0.5, "nu": 3}, "unknown key 'nu'"),
])
def test_subgroup_mu_prior_is_checked_by_check(tmp_path, mu_prior, expect):
    ests = [{"name": "all", "hr": 0.8, "ci": [0.6, 1.05]},
            {"name": "lo", "hr": 0.6, "ci": [0.4, 0.9], "subgroup": "low"},
            {"name": "hi", "hr": 1.0, "ci": [0.7, 1.4], "subgroup": "high"}]
    cfg = tmp_path / "pub.yaml"
    cfg.write_text(yaml.safe_dump({"name": "p", "data": {"kind": "published", "estimates": ests},
                                   "published": {"subgroups": {"mu_prior": mu_prior}}}))
    _reject(run_cli("check", cfg), "published.subgroups", expect)


def _digitised(tmp_path, risk_edit=None):
    curve = pd.read_csv(RDATA / "rossi_km_curve.csv")
    risk = pd.read_csv(RDATA / "rossi_km_risk.csv")
    if risk_edit:
        risk_edit(risk)
    curve.to_csv(tmp_path / "curve.csv", index=False)
    risk.to_csv(tmp_path / "risk.csv", index=False)
    return ["--curve", tmp_path / "curve.csv", "--risk", tmp_path / "risk.csv", "--percent",
            "--out", tmp_path / "out" / "ipd.csv"]


@pytest.mark.parametrize("n0,expect", [(0, "no patient randomised"),
                                       (10**7, "more than 100,000 patients")])
def test_numbers_at_risk_of_0_or_10_million_are_refused_quickly(tmp_path, n0, expect):
    def edit(r):
        r.loc[(r["time"] == 0) & (r["arm"] == "no_aid"), "n_at_risk"] = n0

    t0 = time.perf_counter()
    res = run_cli("reconstruct", *_digitised(tmp_path, edit))
    _reject(res, "arm 'no_aid'", "time 0", expect, out=tmp_path / "out")
    assert time.perf_counter() - t0 < 30

    def every(r):
        r["n_at_risk"] = 0

    _reject(run_cli("reconstruct", *_digitised(tmp_path, every)), "no patient randomised")


def test_reconstruct_with_an_unknown_treatment_arm_is_refused(tmp_path):
    args = _digitised(tmp_path)
    _reject(run_cli("reconstruct", *args, "--treatment", "financial_ad"),
            "--treatment 'financial_ad'", "['financial_aid', 'no_aid']", out=tmp_path / "out")
    from trialbayes.core.errors import DataError
    from trialbayes.data.reconstruct.guyot import reconstruct
    from trialbayes.estimands.reconstruction import quality

    c, r = pd.read_csv(tmp_path / "curve.csv"), pd.read_csv(tmp_path / "risk.csv")
    with pytest.raises(DataError, match="not one of the digitised arms"):
        quality(reconstruct(c, r, percent=True), c, r, percent=True, treatment_arm="aid")


ENCODINGS = {
    "utf16": lambda text: text.encode("utf-16"),
    "latin1": lambda text: text.replace("case", "café").replace("placebo", "placébo").encode(
        "latin-1"),
    "binary": lambda text: bytes(range(256)) * 4,
}


@pytest.mark.parametrize("kind,expect", [("utf16", "UTF-16"), ("latin1", "not UTF-8"),
                                         ("binary", "binary file")])
@pytest.mark.parametrize("which", ["config", "data"])
def test_text_files_that_are_not_utf8_are_refused_by_name(tmp_path, kind, expect, which):
    cfg = write_case(tmp_path / "in")
    target = cfg if which == "config" else tmp_path / "in" / "patients.csv"
    target.write_bytes(ENCODINGS[kind](target.read_text()))
    for command in ("check", "run"):
        res = run_cli(command, cfg, *(["--out", tmp_path / "out"] if command == "run" else []))
        _reject(res, str(target.name), expect, out=tmp_path / "out")


def test_a_folder_where_a_file_is_expected(tmp_path):
    cfg = write_case(tmp_path / "in")
    (tmp_path / "dir.yaml").mkdir()
    _reject(run_cli("check", tmp_path / "dir.yaml"), "is a folder, not a file")
    (tmp_path / "in" / "patients.csv").unlink()
    (tmp_path / "in" / "patients.csv").mkdir()
    _reject(run_cli("run", cfg, "--out", tmp_path / "out"), "patients.csv is a folder",
            out=tmp_path / "out")
    args = _digitised(tmp_path)
    args[1] = tmp_path  # --curve a folder
    _reject(run_cli("reconstruct", *args), "is a folder, not a file")
    args = _digitised(tmp_path)
    args[-1] = tmp_path  # --out an existing folder
    _reject(run_cli("reconstruct", *args), "--out", "is a folder")


def test_a_file_as_the_output_folder_exits_2_for_every_command(tmp_path):
    cfg = write_case(tmp_path / "in")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    _reject(run_cli("calibrate", cfg, "--out", blocker, "--fits", 10, "--draws", 50),
            "is not a folder")
    _reject(run_cli("run", cfg, "--out", blocker), "is not a folder")
    _reject(run_cli("report", blocker), "is not a folder")
    args = _digitised(tmp_path)
    args[-1] = blocker / "ipd.csv"  # the CSV's folder is a file
    _reject(run_cli("reconstruct", *args), "cannot be written")
    assert blocker.read_text() == "a file"


@pytest.mark.parametrize("command", ["run", "calibrate", "reconstruct"])
def test_read_only_output_folder_exits_2_for_every_command(tmp_path, command):
    cfg = write_case(tmp_path / "in")
    ro = tmp_path / "ro"
    ro.mkdir()
    args = {"run": ["run", cfg, "--out", ro],
            "calibrate": ["calibrate", cfg, "--out", ro, "--fits", 10, "--draws", 50],
            "reconstruct": ["reconstruct", *_digitised(tmp_path)[:-1], ro / "ipd.csv"]}[command]
    ro.chmod(0o555)
    try:
        res = cli_process(*args, read_only_rules=True)
    finally:
        ro.chmod(0o755)
    assert res.returncode == 2, res.stderr
    assert "cannot be written" in res.stderr and str(ro) in res.stderr
    assert not any(ro.iterdir())
