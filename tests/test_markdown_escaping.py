"""Every user string reaches report.md escaped, as report.html escapes it (issue 15, case 4), and
column names netCDF refuses (``/``) are analysed and shown as given (case 10).

The check is structural: report.md is parsed by a CommonMark parser (markdown-it, tables on) and
must hold no raw HTML, no link and no image other than the run's own figures."""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from helpers import run_cli
from markdown_it import MarkdownIt

HOSTILE = "<b>X</b>[l](http://e.x)![i](http://e.x/i.png)|`c`*e*"
MD = MarkdownIt("commonmark").enable("table")


def markup(text: str, figures=()) -> list:
    """Raw HTML, links and foreign images in a Markdown text (what escaping must prevent)."""
    bad = []
    for t in MD.parse(text):
        if t.type == "html_block":
            bad.append(("html_block", t.content[:60]))
        for c in t.children or []:
            if c.type in ("html_inline", "link_open"):
                bad.append((c.type, c.content[:60], dict(c.attrs)))
            if c.type == "image" and c.attrs.get("src") not in set(figures):
                bad.append(("image", dict(c.attrs)))
    return bad


def test_markdown_text_helpers():
    from trialbayes.core.escape import md_code, md_figure, md_text

    for s in [HOSTILE, "http://e.x and www.e.x", "# head", "1. item", "- item", "> quote",
              "a_b_ *c*", "<https://e.x>", "x\n\n<script>y</script>"]:
        assert markup(f"a {md_text(s)} b") == [] and markup(md_text(s)) == [], s
        assert "http://" not in md_text(s) and "www." not in md_text(s)
    assert MD.render(md_text("# head")).startswith("<p>")  # not a heading
    assert MD.render("- " + md_text("1. item")).count("<li>") == 1  # not a nested list
    assert md_code("a`b|c") == "`a'b¦c`" and markup(md_code(HOSTILE)) == []
    assert md_figure("c", "figures/x.png") == "![c](figures/x.png)"
    assert md_figure("c", "http://e.x/i.png") == md_figure("c", "../x.png") == ""


def _strings(node, path=()):
    """Paths of every string value and every mapping key in a JSON tree."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield path + (("key", k),)
            yield from _strings(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _strings(v, path + (i,))
    elif isinstance(node, str):
        yield path


def _hostile(d, p):
    d = copy.deepcopy(d)
    node = d
    for k in p[:-1]:
        node = node[k]
    if isinstance(p[-1], tuple):
        node[HOSTILE + p[-1][1]] = node.pop(p[-1][1])
    else:
        node[p[-1]] = HOSTILE + node[p[-1]]
    return d


@pytest.mark.slow  # one render per string of the run: ~1400 renders, ~25 s
def test_every_string_of_results_json_is_escaped_in_report_md(small_run):
    """Each string of a real results.json (and each key) in turn made hostile: ``report`` either
    refuses the file (exit 2: a checked field) or renders a report.md without markup."""
    from trialbayes.core.errors import DataError
    from trialbayes.report.markdown import render_patient_report
    from trialbayes.results.io import results_from_dict

    tmp, _, res = small_run
    d0 = json.loads((tmp / "out" / "mirocals" / "results.json").read_text())
    figures, leaks, rendered = d0["figures"].values(), {}, 0
    for p in _strings(d0):
        d = _hostile(d0, p)
        try:
            r = results_from_dict(d)  # validated strictly, as `report` reads it
            text = render_patient_report(r)
        except (DataError, KeyError, TypeError, ValueError, AttributeError, IndexError):
            continue  # `report` exits 2 on these (test_report_security)
        rendered += 1
        bad = markup(text, figures)
        if bad:
            leaks[str(p)] = bad[0]
    assert rendered > 300 and not leaks, "\n".join(f"{k}: {v}" for k, v in leaks.items())


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """Rossi's recidivism trial (not MIROCALS) with hostile column names, units, arm labels, title
    and data label; a biomarker named with '/' and '$' (netCDF and mathtext would refuse it)."""
    from lifelines.datasets import load_rossi

    tmp = tmp_path_factory.mktemp("hostile")
    bm = "cd4/cd8 <img src=x onerror=alert(1)> $\\frac{1}$"
    age = "*age* [x](http://e.x)|`c`"
    df = load_rossi().reset_index(names="id").rename(columns={"prio": bm, "age": age})
    df["fin"] = df["fin"].map({1: "<b>aid</b>", 0: "![n](http://e.x/n.png) none"})
    df.to_csv(tmp / "rossi.csv", index=False)
    cfg = {
        "name": "rossi_hostile",
        "title": "# <script>alert('t')</script> [t](http://e.x)",
        "data": {"kind": "file", "path": "rossi.csv", "label": "www.evil.example <i>x</i>",
                 "time_unit": "weeks", "units": {bm: "[u](http://e.x) <u>$x^$", age: "years|x"},
                 "columns": {"id": "id", "time": "week", "event": "arrest", "arm": "fin",
                             "treatment_level": "<b>aid</b>", "biomarkers": [bm],
                             "covariates": [age]}},
        "models": [{"name": "adj", "covariates": "all"},
                   {"name": "int", "interaction": "linear", "biomarker": bm}],
        "sampler": {"chains": 2, "draws": 300, "tune": 300, "seed": 1},
        "diagnostics": {"allow_unreliable": True},
    }
    (tmp / "config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))
    res = run_cli("run", tmp / "config.yaml", "--out", tmp / "out")
    return tmp / "out" / "rossi_hostile", bm, age, res


@pytest.mark.slow  # a real run (2 models, 2 × 300 draws)
def test_hostile_names_in_a_real_run_reach_no_report_as_markup(hostile_run):
    import xarray as xr

    out, bm, age, res = hostile_run
    assert res.exit_code == 0, res.output
    r = json.loads((out / "results.json").read_text())
    md = (out / "report.md").read_text()
    assert markup(md, r["figures"].values()) == []
    html = (out / "report.html").read_text()
    for raw in ("<img src=x", "<b>aid", "<script>alert", "<i>x", "<u>"):
        assert raw not in html and raw not in md, raw
    # the original names everywhere: results, tables, the posterior file's attributes
    assert r["models"]["int"]["hr_curve"]["biomarker"] == bm
    assert bm in (out / "tables" / "hr_curve_int.csv").read_text() or bm in r["settings"][
        "biomarker"]["value"]
    dt = xr.open_datatree(out / "posterior" / "int.nc", engine="h5netcdf")
    names = json.loads(dt["observed_data"].attrs["columns_json"])
    assert sorted(names.values()) == sorted([bm, age]) and all("/" not in k for k in names)
    assert {dt["observed_data"][k].attrs["column"] for k in names} == {bm, age}
    assert (out / "figures" / "hr_curve_int.png").stat().st_size > 1000


def test_our_sentences_show_quoted_names_as_code_and_keep_user_text_inert():
    """md_spans: the names our sentences quote between backticks become code spans (no literal
    backslash-backticks in report.md), any markup a user put in a name stays inert, and an
    unpaired backtick is plain text."""
    from trialbayes.core.escape import md_spans

    verdict = "PSIS-LOO prefers `interaction` (Δelpd to `adjusted` 51.8, SE 10.9)."
    assert md_spans(verdict) == verdict
    assert "\\`" not in md_spans(verdict)
    hostile = md_spans("model `<img src=x onerror=alert(1)>|x` is [preferred](http://e.vil)")
    assert "`<img src=x onerror=alert(1)>¦x`" in hostile  # inside a code span: inert, one cell
    assert "[preferred](http:" not in hostile and "&lt;" not in hostile.split("`")[1]
    assert md_spans("one ` alone") == "one \\` alone"
