"""Fast tests (no sampling) of the figures, the HTML renderer, the prior draws and the progress
lines."""

import io
import re

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from trialbayes.config.priors import (
    FLAT_SIGMA,
    FlatPrior,
    MixturePrior,
    NormalPrior,
    StudentTPrior,
    prior_draws,
)
from trialbayes.core import progress
from trialbayes.estimands.frequentist import km_fit, median_follow_up
from trialbayes.plots import general as plots
from trialbayes.plots import journal as figures
from trialbayes.plots import style
from trialbayes.report import html as html_report


def _km_data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    treat = np.repeat([0, 1], n // 2)
    t = rng.exponential(np.where(treat == 1, 14.0, 10.0))
    c = rng.uniform(2, 25, n)
    return np.minimum(t, c), (t <= c).astype(int), treat


def _exact_curves(times, rates, band=0.02):
    """Model survival curves exp(-rate t) per arm with a fixed-width band."""
    rows = []
    for arm, lam in rates.items():
        s = np.exp(-lam * times)
        rows.append(
            pd.DataFrame(
                {"arm": arm, "time": times, "median": s, "lower": s - band, "upper": s + band}
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_at_risk_matches_lifelines_event_table():
    from lifelines import KaplanMeierFitter

    times, events, _ = _km_data()
    km = KaplanMeierFitter().fit(times, events)
    et = km.event_table
    probe = et.index.to_numpy()[1:40]
    assert np.array_equal(figures.at_risk(times, probe), et.loc[probe, "at_risk"].to_numpy())
    assert figures.at_risk(times, [0.0])[0] == len(times)


def test_km_step_matches_lifelines():
    from lifelines import KaplanMeierFitter

    times, events, _ = _km_data()
    km = KaplanMeierFitter().fit(times, events)
    probe = np.linspace(0, times.max(), 57)
    assert np.allclose(
        figures.step_at(km_fit(times, events), probe), km.survival_function_at_times(probe)
    )


def test_median_follow_up_is_reverse_km():
    """With no events the reverse KM is the KM of the follow-up times: its median is the sample
    median (odd n); with events, lifelines' KM of the censoring indicator gives the same value."""
    from lifelines import KaplanMeierFitter

    t = np.arange(1.0, 102.0)
    assert median_follow_up(t, np.zeros(101, int)) == pytest.approx(51.0)
    times, events, _ = _km_data()
    ref = KaplanMeierFitter().fit(times, 1 - events).median_survival_time_
    assert median_follow_up(times, events) == pytest.approx(ref)


def test_km_agreement_flags_exactly_where_km_leaves_the_band():
    """KM built by hand as a known step function; the band is ±0.02 around exp(-t/10): the flagged
    times are those where the step function is more than 0.02 away (computed independently)."""
    grid = np.linspace(0, 20, 41)
    km_t = np.array([0.0, 5.0, 10.0, 15.0])
    km_s = np.array([1.0, 0.62, 0.36, 0.10])
    km = pd.concat([pd.DataFrame({"arm": a, "time": km_t, "survival": km_s}) for a in (0, 1)])
    curves = _exact_curves(grid, {0: 0.1, 1: 0.1})
    res = figures.km_agreement(km, curves, landmark=10.0)
    g = grid[grid > 0]
    step = km_s[np.searchsorted(km_t, g, side="right") - 1]
    expected = np.abs(step - np.exp(-0.1 * g)) > 0.02
    a = res["treatment"]
    assert a["share_outside_band"] == pytest.approx(expected.mean())
    assert a["landmark"]["km"] == 0.36 and a["landmark"]["median"] == pytest.approx(np.exp(-1.0))
    assert a["landmark"]["inside"] == (abs(0.36 - np.exp(-1.0)) <= 0.02)
    spans = a["outside_spans"]
    assert sum(int(((g >= lo) & (g <= hi)).sum()) for lo, hi in spans) == expected.sum()
    assert "landmark (10 weeks)" in figures.km_caption(res, 10.0, "weeks")


def test_hr_ticks_never_collide_and_cover_the_range():
    """Adjacent ticks are at least 1/12 of the axis apart (≥ 0.4 inch on a 5-inch axis: room for
    labels such as '0.05' at 8 pt), and the ticks cover the range."""
    for lo, hi in [
        (0.2, 0.25),
        (0.18, 12),
        (0.05, 1.3),
        (0.4, 3.2),
        (0.001, 50),
        (0.6, 1.1),
        (1e-4, 1e3),
    ]:
        t = style.hr_ticks(lo, hi)
        assert len(t) >= 2
        assert t[0] <= lo * 1.03 and t[-1] >= hi * 0.97
        span = np.log10(t[-1] / t[0])
        assert np.min(np.diff(np.log10(t))) >= span / 12, (lo, hi, t)


def test_km_caption_keeps_fractional_times():
    """Times in years below 2: the spans and the time of the largest gap keep their digits."""
    agree = {
        "treatment": {
            "share_outside_band": 0.25,
            "max_abs_diff": 0.05,
            "max_abs_diff_time": 1.27,
            "outside_spans": [(0.4, 1.3), (1.75, 1.75)],
        }
    }
    cap = figures.km_caption(agree, None, "years")
    assert "(0.4–1.3, 1.75 years)" in cap and "at 1.27 years" in cap, cap


@pytest.mark.parametrize("sd", [1.0, 10.0])
def test_prior_density_keeps_the_prior_mass_inside_the_axis(sd):
    """The drawn prior density of N(0, sd) integrates over the x axis to the prior's mass there,
    Phi(b/sd) - Phi(a/sd), within 0.01 (20,000 draws: Monte Carlo SE of that mass <= 0.0036,
    plus the kernel's smoothing at the edges); cutting the draws to a window must not rescale."""
    rng = np.random.default_rng(0)
    fig = figures.prior_posterior_figure(
        {"t": (rng.normal(0, sd, 20_000), rng.normal(-0.4, 0.2, 4000))}
    )
    ax = fig.axes[0]
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == "prior"]
    a, b = ax.get_xlim()
    area = np.trapezoid(line.get_ydata(), line.get_xdata())
    assert line.get_xdata()[0] == a and line.get_xdata()[-1] == b
    assert area == pytest.approx(stats.norm.cdf(b / sd) - stats.norm.cdf(a / sd), abs=0.01)
    plt.close(fig)


def test_hr_curve_caption_names_the_configured_thresholds():
    from trialbayes.report.run_figures import _below_words

    cols = ["biomarker", "p_hr_below_1", "p_hr_below_0.7", "p_hr_below_0.5"]
    assert _below_words(pd.DataFrame(columns=cols)) == "below 1, below 0.7 and below 0.5"
    assert _below_words(pd.DataFrame(columns=cols[:2])) == "below 1"


def test_km_curves_carry_the_requested_level():
    from lifelines import KaplanMeierFitter

    from trialbayes.estimands.frequentist import km_curves

    times, events, treat = _km_data()
    km = km_curves(times, events, treat, level=0.8)
    ref = KaplanMeierFitter(alpha=0.2).fit(times[treat == 1], events[treat == 1])
    got = km[km["arm"] == 1]
    assert (km["level"] == 0.8).all()
    assert np.allclose(got["lower"], ref.confidence_interval_.iloc[:, 0])
    assert np.allclose(got["upper"], ref.confidence_interval_.iloc[:, 1])


def _figure_calls(tmp_path):
    times, events, treat = _km_data()
    grid = np.linspace(0, times.max(), 30)
    curves = _exact_curves(grid, {0: 0.1, 1: 0.07})
    x = np.linspace(500, 8000, 40)
    curve = pd.DataFrame(
        {
            "biomarker": x,
            "median": np.exp(-1 + x / 4000),
            "lower": np.exp(-1.6 + x / 4000),
            "upper": np.exp(-0.4 + x / 4000),
            "p_hr_below_1": 1 - x / 8000,
            "p_hr_below_0.8": 0.8 - x / 10000,
        }
    )
    rng = np.random.default_rng(1)
    return {
        "km": lambda ax: figures.km_figure(
            times, events, treat, curves, axes=ax, landmark=12, unit="months"
        ),
        "hr_curve": lambda ax: figures.hr_curve_figure(
            curve, "pnfh", "pg/mL", rng.lognormal(7.5, 0.6, 200), [750, 3700], axes=ax
        ),
        "prior_posterior": lambda ax: figures.prior_posterior_figure(
            {"treatment": (rng.normal(0, 1, 2000), rng.normal(-0.4, 0.2, 2000))}, axes=ax
        ),
        "forest": lambda ax: plots.forest_plot(
            [
                {
                    "group": "m",
                    "label": "a",
                    "hr": 0.7,
                    "lower": 0.5,
                    "upper": 1.1,
                    "p_benefit": 0.94,
                }
            ],
            ax=ax,
        ),
        "hr_posterior": lambda ax: plots.hr_posterior_plot(rng.normal(-0.3, 0.2, 2000), ax=ax),
    }


@pytest.mark.parametrize("name", ["km", "hr_curve", "prior_posterior", "forest", "hr_posterior"])
def test_figures_draw_on_given_axes_and_leave_the_backend_alone(name, tmp_path):
    backend = matplotlib.get_backend()
    call = _figure_calls(tmp_path)[name]
    n_axes = {"km": 2, "hr_curve": 3, "prior_posterior": 1, "forest": 1, "hr_posterior": 1}[name]
    fig, axes = plt.subplots(n_axes, 1, figsize=(7, 3 * n_axes), squeeze=False)
    axes = list(axes[:, 0])
    got = call(axes if name in ("km", "hr_curve", "prior_posterior") else axes[0])
    assert got is fig
    assert all(a.has_data() or a.texts for a in axes)
    assert matplotlib.get_backend() == backend
    fresh = call(None)
    assert fresh is not fig
    style.save(fresh, tmp_path / f"{name}.png")
    plt.close(fig)
    assert (tmp_path / f"{name}.png").stat().st_size > 5000


def test_one_colour_per_arm_in_km_figure():
    times, events, treat = _km_data()
    fig = figures.km_figure(times, events, treat, landmark=None, arm_labels=("ctl", "trt"))
    ax, tab = fig.axes[:2]
    colours = {
        ln.get_label().split(":")[0]: ln.get_color()
        for ln in ax.get_lines()
        if ":" in ln.get_label()
    }
    assert colours == {"ctl": style.ARM_COLOURS[0], "trt": style.ARM_COLOURS[1]}
    table_colours = {t.get_color() for t in tab.texts}
    assert table_colours == {style.ARM_COLOURS[0], style.ARM_COLOURS[1]}
    plt.close(fig)


# ----------------------------------------------------------------------------- prior draws
def test_prior_draws_normal_moments():
    """n = 40 000 draws of N(-0.3, 0.5²): mean and SD within 4.5 standard errors (false-failure rate
    < 1e-5 each, two checks)."""
    n = 40_000
    d = prior_draws(NormalPrior(mu=-0.3, sigma=0.5), n, seed=3)
    assert abs(d.mean() + 0.3) < 4.5 * 0.5 / np.sqrt(n)
    assert abs(d.std() - 0.5) < 4.5 * 0.5 / np.sqrt(2 * n)


@pytest.mark.parametrize(
    "prior, cdf",
    [
        (StudentTPrior(nu=3, mu=0.1, sigma=0.4), lambda x: stats.t.cdf(x, 3, 0.1, 0.4)),
        (
            MixturePrior(
                weight=0.8, informative=NormalPrior(sigma=0.42), vague=NormalPrior(sigma=2.0)
            ),
            lambda x: 0.8 * stats.norm.cdf(x, 0, 0.42) + 0.2 * stats.norm.cdf(x, 0, 2.0),
        ),
        (FlatPrior(), lambda x: stats.norm.cdf(x, 0, FLAT_SIGMA)),
    ],
)
def test_prior_draws_follow_the_closed_form_cdf(prior, cdf):
    """KS test of 20 000 draws against the closed-form CDF at α = 1e-4 (false-failure rate 1e-4
    per case)."""
    d = prior_draws(prior, 20_000, seed=11)
    assert stats.kstest(d, cdf).pvalue > 1e-4


# ----------------------------------------------------------------------------- HTML
def _view(title, img=None):
    b = html_report
    fig = [
        {
            "type": "figure",
            "key": "k",
            "number": 1,
            "src": img,
            "alt": "alt",
            "caption": "cap <b>x</b>",
        }
    ]
    return {
        "title": title,
        "subtitle": "s",
        "created_at": "now",
        "banners": [{"kind": "synthetic", "text": "S"}],
        "sections": [
            b.section(
                "a",
                "A & B",
                [
                    b.p("<script>alert(1)</script>"),
                    b.table(["arm <i>"], [["x<y"], [0.12345], [None]], "cap"),
                    *fig,
                ],
            )
        ],
    }


def test_html_escapes_user_strings_and_formats_cells():
    html = html_report.render(_view("<script>alert('t')</script> trial"))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;script&gt;alert(&#39;t&#39;)&lt;/script&gt;" in html
    assert "arm &lt;i&gt;" in html and "x&lt;y" in html and "cap &lt;b&gt;x&lt;/b&gt;" in html
    assert ">0.123<" in html and ">–<" in html
    assert "A &amp; B" in html


def test_html_embeds_figures_and_marks_missing_ones(tmp_path):
    fig = plots.hr_posterior_plot(np.random.default_rng(0).normal(size=500))
    style.save(fig, tmp_path / "f.png")
    uri = html_report.data_uri(tmp_path / "f.png")
    assert uri.startswith("data:image/png;base64,")
    html = html_report.render(_view("t", uri))
    assert 'src="data:image/png;base64,' in html and 'class="banner unreliable missing"' not in html
    assert not re.search(r"""(src|href)=["']https?://""", html)
    missing = html_report.render(_view("t", html_report.data_uri(tmp_path / "nope.png")))
    assert 'class="banner unreliable missing"' in missing


# ----------------------------------------------------------------------------- progress
def test_progress_lines_with_elapsed_time_and_quiet():
    buf = io.StringIO()
    prog = progress.configure(enabled=True, stream=buf)
    with progress.phase("compiling model m"):
        pass
    progress.say("hello")
    lines = buf.getvalue().splitlines()
    assert len(lines) == 3 and all(re.match(r"^\[\s*\d+\.\d s\] ", ln) for ln in lines)
    assert lines[0].endswith("compiling model m …") and "done in" in lines[1]
    quiet = io.StringIO()
    progress.configure(enabled=False, stream=quiet)
    with progress.phase("x"):
        pass
    assert quiet.getvalue() == "" and prog.lines
    progress.configure(enabled=False)


def test_sampler_bar_names_the_model():
    class C:
        def __init__(self, done, total):
            self.finished_draws, self.total_draws, self.divergences, self.tuning = (
                done,
                total,
                1,
                done < 5,
            )

    buf = io.StringIO()
    cb = progress.sampler_bar("sampling adjusted", buf)
    cb([C(2, 10), C(3, 10)])
    cb([C(10, 10), C(10, 10)])
    cb([C(10, 10), C(10, 10)])
    out = buf.getvalue()
    assert (
        out.count("sampling adjusted: [") == 2
        and "20/20 draws, 2 divergent" in out
        and out.endswith("\n")
    )


@pytest.mark.parametrize("label_len", [5, 60])
def test_forest_columns_never_overlap_and_stay_in_the_figure(label_len):
    """Long row labels squeeze the axes; the HR and P(HR < 1) columns must still not overlap each
    other or the axes, and stay inside the figure."""
    rows = [
        {
            "group": "g",
            "label": "x" * label_len,
            "hr": 0.61,
            "lower": 0.34,
            "upper": 1.06,
            "p_benefit": 0.963,
        },
        {"group": "g", "label": "Cox", "hr": 2.78, "lower": 1.26, "upper": 15.5, "kind": "cox"},
    ]
    fig = plots.forest_plot(rows)
    fig.canvas.draw()
    ren = fig.canvas.get_renderer()
    ax = fig.axes[0]
    texts = [t for t in ax.texts if t.get_text()]
    hr = [t.get_window_extent(ren) for t in texts if "(" in t.get_text() and "–" in t.get_text()]
    pc = [t.get_window_extent(ren) for t in texts if t.get_text() in ("0.963",)]
    ax_box = ax.get_window_extent(ren)
    fig_w = fig.get_figwidth() * fig.dpi
    assert hr and pc
    assert min(b.x0 for b in hr) > ax_box.x1
    assert max(b.x1 for b in hr) < min(b.x0 for b in pc)
    assert max(b.x1 for b in pc) <= fig_w
    plt.close(fig)


def test_hr_curve_figure_draws_the_cox_line_once():
    """The Cox line of the HR-along-the-biomarker figure is the Cox estimate (the curve's
    ``cox_median`` column), drawn once: not also a copy of the posterior median (the renamed
    column used to select both)."""
    import types

    import matplotlib.pyplot as plt

    from trialbayes.report.run_figures import _hr_curve

    x = np.linspace(100, 5000, 30)
    curve = pd.DataFrame({"biomarker": x, "median": np.exp(0.1 + x / 4000),
                          "lower": np.exp(x / 4000 - 0.5), "upper": np.exp(x / 4000 + 0.5),
                          "p_hr_below_1": np.linspace(0.9, 0.1, 30),
                          "cox_median": np.exp(-0.2 + x / 3000)})  # fmt: skip
    design = types.SimpleNamespace(basis=types.SimpleNamespace(kind="linear", log=False,
                                                               offset=0.0),
                                   biomarker_values=np.linspace(100, 5000, 80))  # fmt: skip
    run = types.SimpleNamespace(
        models={"m": types.SimpleNamespace(spec=types.SimpleNamespace(biomarker="b"),
                                           design=design)},
        tables={"per_model": {"m": {"hr_curve": curve}}},
    )  # fmt: skip
    hc = types.SimpleNamespace(grid=None, simultaneous=None, credible_subgroups=[])
    r = types.SimpleNamespace(unit_of=lambda b: "", setting=lambda k: None,
                              models={"m": types.SimpleNamespace(spec={},
                                                                 hr_curve=hc)})  # fmt: skip
    _, draw = _hr_curve(r, run, "m", None, 0.95)
    fig = draw()
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels.count("Cox estimate") == 1
    cox = [ln for ln in ax.get_lines() if ln.get_label() == "Cox estimate"]
    assert len(cox) == 1
    np.testing.assert_allclose(cox[0].get_ydata(), curve["cox_median"])
    plt.close(fig)
