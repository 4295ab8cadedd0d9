"""KM reconstruction (Guyot 2012): round trips on real randomised trials, malformed inputs,
the CLI command and a full run from a digitised figure."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import run_cli
from lifelines import CoxPHFitter, KaplanMeierFitter

from trialbayes.core.errors import ReconstructionError
from trialbayes.data.reconstruct.guyot import reconstruct
from trialbayes.estimands.reconstruction import quality, simulate_digitisation

ROOT = Path(__file__).resolve().parents[1]


def _rossi():
    """Rossi: 432 patients, weekly times (0-52), 114 arrests; ~45 drops per arm."""
    from lifelines.datasets import load_rossi

    r = load_rossi()
    return (
        r["week"].to_numpy(float),
        r["arrest"].to_numpy(int),
        np.where(r["fin"] == 1, "aid", "none"),
        "aid",
        [0, 8, 16, 24, 32, 40, 48],
    )


def _veterans():
    """Veterans' lung cancer (scikit-survival): 137 patients, days, 128 deaths; ~55 drops per
    arm."""
    from sksurv.datasets import load_veterans_lung_cancer

    x, y = load_veterans_lung_cancer()
    return (
        y["Survival_in_days"].astype(float),
        y["Status"].astype(int),
        x["Treatment"].astype(str).to_numpy(),
        "test",
        [0, 60, 120, 180, 240, 360, 500],
    )


# A reader clicks the top and bottom of the drops: Rossi's 25 of ~45 drops (51 points per arm),
# survival noise SD 0.002 and times snapped to the week grid (its times are whole weeks; jittering
# them only re-breaks ties and moves Efron's Cox estimate by up to 0.1). Veterans: every drop
# (~115 points per arm; with 51 points its KM error reached 0.03-0.05: small trials with many
# single-patient drops need every drop digitised), noise SD 0.5 day and 0.002.
@pytest.mark.parametrize(
    "trial,n_points,time_noise",
    [(_rossi, 25, 0.0), (_veterans, 70, 0.5)],
    ids=["rossi", "veterans"],
)
def test_round_trip_on_real_trial(trial, n_points, time_noise):
    """The reconstruction reproduces the original KM within 0.03 at every risk-table time, the
    events per arm within 5%, and the Cox log-HR within 0.05.

    The digitiser's noise is random, so these tolerances were set from a sweep over digitiser seeds
    (Rossi 205 seeds, Veterans 105): largest KM difference 0.0184 / 0.0147 (mean 0.0138 / 0.0053,
    SD 0.0017 / 0.0039: the tolerance is 9.5 / 6.3 SD above the mean); events off by 0 (87%) or 1
    (13%, 2.1% of an arm), never 2; Cox difference at most 0.028 / 0.023 (mean 0.005 / 0.009, SD
    0.006: 7 SD below 0.05). Normal tails beyond 6 SD put the false-failure rate far below 1e-3.
    """
    t, e, arm, treated, risk_times = trial()
    curve, risk, ev = simulate_digitisation(
        t,
        e,
        arm,
        n_points=n_points,
        risk_times=risk_times,
        time_noise=time_noise,
        surv_noise=0.002,
        seed=11,
        mode="corners",
    )
    ipd = reconstruct(curve, risk, ev)
    for a in np.unique(arm):
        m = arm == a
        orig = KaplanMeierFitter().fit(t[m], e[m])
        g = ipd[ipd["arm"] == a]
        rec = KaplanMeierFitter().fit(g["time"], g["event"])
        for rt in risk_times:
            diff = abs(
                float(orig.survival_function_at_times(rt).iloc[0])
                - float(rec.survival_function_at_times(rt).iloc[0])
            )
            assert diff <= 0.03, (a, rt, diff)
        assert abs(g["event"].sum() - e[m].sum()) <= 0.05 * e[m].sum()
        assert len(g) == m.sum()

    def cox(times, events, treat):
        return (
            CoxPHFitter()
            .fit(pd.DataFrame({"t": times, "e": events, "x": treat}), "t", "e")
            .summary.loc["x", "coef"]
        )

    assert (
        abs(
            cox(t, e, (arm == treated).astype(int))
            - cox(ipd["time"], ipd["event"], (ipd["arm"] == treated).astype(int))
        )
        <= 0.05
    )


def test_noisy_digitiser_output_is_cleaned():
    curve = pd.DataFrame(
        {
            "arm": ["a"] * 6 + ["b"] * 5,
            "time": [5, 2, 2, 8, 10, 10, 3, 3, 6, 9, 10],
            "survival": [0.80, 0.90, 0.95, 0.82, 0.70, 0.60, 1.01, 0.9, 0.8, 0.7, 0.7],
        }
    )  # unsorted, duplicates, step up, >1, no (0,1)
    risk = pd.DataFrame(
        {"arm": ["a", "a", "b", "b"], "time": [0, 5, 0, 5], "n_at_risk": [50, 40, 50, 42]}
    )
    ipd = reconstruct(curve, risk)
    assert set(ipd["arm"]) == {"a", "b"} and len(ipd) == 100 and (ipd["time"] > 0).all()


def _bad(curve=None, risk=None, events=None, percent=False):
    curve = (
        curve
        if curve is not None
        else pd.DataFrame(
            {"arm": ["a", "a", "b", "b"], "time": [0, 10, 0, 10], "survival": [1, 0.5, 1, 0.6]}
        )
    )
    risk = (
        risk
        if risk is not None
        else pd.DataFrame(
            {"arm": ["a", "a", "b", "b"], "time": [0, 5, 0, 5], "n_at_risk": [20, 12, 20, 14]}
        )
    )
    with pytest.raises(ReconstructionError) as err:
        reconstruct(curve, risk, events, percent)
    return str(err.value)


def test_rejects_increasing_n_at_risk():
    msg = _bad(
        risk=pd.DataFrame(
            {"arm": ["a", "a", "b", "b"], "time": [0, 5, 0, 5], "n_at_risk": [20, 25, 20, 14]}
        )
    )
    assert "increases" in msg and "'a'" in msg


def test_rejects_risk_times_beyond_curve():
    msg = _bad(
        risk=pd.DataFrame(
            {"arm": ["a", "a", "b", "b"], "time": [0, 50, 0, 5], "n_at_risk": [20, 12, 20, 14]}
        )
    )
    assert "beyond the curve's last time" in msg


def test_rejects_arm_mismatch():
    assert "arms do not match" in _bad(
        risk=pd.DataFrame({"arm": ["a", "c"], "time": [0, 0], "n_at_risk": [20, 20]})
    )
    assert "arms do not match" in _bad(events=pd.DataFrame({"arm": ["a", "z"], "events": [3, 4]}))


def test_rejects_negative_times():
    assert "negative times" in _bad(
        curve=pd.DataFrame({"arm": ["a", "b"], "time": [-1, 0], "survival": [1, 1]})
    )
    assert "negative times" in _bad(
        risk=pd.DataFrame({"arm": ["a", "b"], "time": [-2, 0], "n_at_risk": [20, 20]})
    )


def test_rejects_survival_outside_unit_interval():
    msg = _bad(
        curve=pd.DataFrame({"arm": ["a", "a", "b"], "time": [0, 5, 0], "survival": [1, 1.2, 1]})
    )
    assert "outside [0, 1]" in msg and "row 2" in msg
    assert "percent" in _bad(
        curve=pd.DataFrame({"arm": ["a", "a", "b"], "time": [0, 5, 0], "survival": [100, 80, 100]})
    )


def test_rejects_missing_columns_and_first_risk_time():
    assert "missing column" in _bad(curve=pd.DataFrame({"arm": ["a"], "t": [0], "survival": [1]}))
    assert "must be 0" in _bad(
        risk=pd.DataFrame({"arm": ["a", "b"], "time": [1, 0], "n_at_risk": [20, 20]})
    )


def test_cli_reconstruct_writes_ipd_and_quality(tmp_path):
    d = ROOT / "configs" / "data"
    out = tmp_path / "ipd" / "rossi.csv"
    res = run_cli(
        "reconstruct",
        "--curve",
        d / "rossi_km_curve.csv",
        "--risk",
        d / "rossi_km_risk.csv",
        "--events",
        d / "rossi_km_events.csv",
        "--percent",
        "--treatment",
        "financial_aid",
        "--out",
        out,
    )
    assert res.exit_code == 0, res.output
    ipd = pd.read_csv(out)
    assert list(ipd.columns) == ["data", "id", "time", "event", "arm"] and len(ipd) == 432
    assert (ipd["data"] == "RECONSTRUCTED").all()
    q = json.loads((tmp_path / "ipd" / "rossi.quality.json").read_text())
    assert (
        q["arms"]["no_aid"]["published_events"] == 66
        and abs(q["arms"]["no_aid"]["events"] - 66) <= 2
    )
    assert q["treatment_arm"] == "financial_aid" and q["cox"]["method"] == "cox"
    assert (tmp_path / "ipd" / "rossi.quality.png").is_file()


def test_cli_reconstruct_bad_input_writes_nothing(tmp_path):
    (tmp_path / "c.csv").write_text("arm,time,survival\na,0,1\na,5,0.5\nb,0,1\nb,5,0.6\n")
    (tmp_path / "r.csv").write_text("arm,time,n_at_risk\na,0,10\na,3,12\nb,0,10\n")
    res = run_cli(
        "reconstruct",
        "--curve",
        tmp_path / "c.csv",
        "--risk",
        tmp_path / "r.csv",
        "--out",
        tmp_path / "o" / "ipd.csv",
    )
    assert res.exit_code == 2 and "increases" in res.stderr
    assert not (tmp_path / "o").exists()


def test_quality_flags_poor_agreement():
    t, e, arm, treated, rt = _rossi()
    curve, risk, ev = simulate_digitisation(
        t, e, arm, n_points=25, risk_times=rt, seed=1, mode="corners"
    )
    ipd = reconstruct(curve, risk, ev)
    ev_wrong = ev.assign(events=ev["events"] + 30)
    q = quality(ipd, curve, risk, ev_wrong, treatment_arm=treated)
    assert q.poor_agreement and any("published" in w for w in q.warnings)


@pytest.mark.slow
def test_run_from_digitised_figure(tmp_path):
    """The shipped config end to end. Whether a fit passes the R-hat gate (1.01) is chance: over
    40 sampler seeds at 4 x 1000 draws one fit missed (1.0132; a log-normal fit to R-hat - 1 puts a
    miss at 2.3%), at 4 x 2000 (the default now) none did (max 1.0053; fitted rate 2e-3): still
    above 1/1000, so the gate is not what this test checks. It runs the config with
    `allow_unreliable` and bounds the diagnostics loosely instead: R-hat <= 1.02 (fitted miss rate
    1.8e-5 at 2000 draws), at most 6 divergences (0 in 80 fits at 1000 and 2000 draws), bulk ESS
    >= 400 (min 1429 of 40)."""
    cfg = yaml.safe_load((ROOT / "configs" / "rossi_reconstructed.yaml").read_text())
    for key in ("curve", "risk", "events"):
        cfg["data"][key] = str(ROOT / "configs" / cfg["data"][key])
    cfg["diagnostics"] = {"allow_unreliable": True}
    (tmp_path / "rossi_reconstructed.yaml").write_text(yaml.safe_dump(cfg))
    res = run_cli("run", tmp_path / "rossi_reconstructed.yaml", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    r = json.loads((tmp_path / "rossi_reconstructed" / "results.json").read_text())
    dg = r["models"]["unadjusted"]["diagnostics"]
    assert dg["rhat_max"] <= 1.02 and dg["divergences"] <= 6 and dg["ess_bulk_min"] >= 400, dg
    assert r["reconstruction"]["method"] == "Guyot et al. 2012"
    assert not r["reconstruction"]["poor_agreement"]
    te = r["models"]["unadjusted"]["treatment_effect"]
    assert r["kind"] == "reconstructed" and r["settings"]["time_unit"]["value"] == "weeks"
    assert 0.5 < te["median"] < 1.0  # Rossi's financial-aid HR is about 0.69
    assert "RECONSTRUCTED" in r["data_label"]
    assert (tmp_path / "rossi_reconstructed" / "figures" / "reconstruction_quality.png").is_file()
