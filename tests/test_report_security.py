"""``trialbayes report OUTDIR`` reads only what the run wrote (issue 15, cases 3 and 11).

A results.json may be edited or planted: figure paths outside the folder, symbolic links, files
that are not PNGs, wrong types and impossible numbers are refused (exit 2 naming the key) or never
embedded; report files are written through exclusive temporary files, so a planted link is
never followed; a read-only folder is exit 2 with the previous reports untouched.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from helpers import cli_process, run_cli

SECRET = "TOP-SECRET-4f1c0ffee\n"


@pytest.fixture()
def run_copy(small_run, tmp_path):
    """A private copy of the shared small run's output folder (with a secret file beside it)."""
    tmp, _, res = small_run
    assert res.exit_code == 0, res.output
    out = tmp_path / "out" / "mirocals"
    shutil.copytree(tmp / "out" / "mirocals", out)
    (tmp_path / "secret.txt").write_text(SECRET)
    return out


def _edit(out: Path, fn) -> None:
    d = json.loads((out / "results.json").read_text())
    fn(d)
    (out / "results.json").write_text(json.dumps(d))


def _leaked(html: str) -> bool:
    enc = base64.b64encode(SECRET.encode()).decode()
    return SECRET.strip() in html or enc[:20] in html


@pytest.mark.parametrize(
    "path",
    [
        "/etc/hostname",
        "../../secret.txt",
        "figures/../../../secret.txt",
        "secret.txt",
        "figures/forest.txt",
    ],
)
def test_figure_paths_outside_the_run_are_refused(run_copy, path):
    before = (run_copy / "report.html").read_text()
    _edit(run_copy, lambda d: d["figures"].update(forest=path))
    res = run_cli("report", run_copy)
    assert res.exit_code == 2, res.output
    assert "figures.forest" in res.stderr
    assert (run_copy / "report.html").read_text() == before  # nothing rewritten


def test_links_and_non_png_files_are_never_embedded(run_copy, tmp_path):
    forest = run_copy / "figures" / "forest.png"
    forest.unlink()
    forest.symlink_to(tmp_path / "secret.txt")  # a link out of the folder
    km = json.loads((run_copy / "results.json").read_text())["figures"]
    other = run_copy / km[next(k for k in km if k.startswith("survival_"))]
    other.write_text(SECRET)  # inside the folder, named .png, but not a PNG
    (run_copy / "figures_link").symlink_to(tmp_path)  # a linked folder
    _edit(run_copy, lambda d: d["figures"].update(hr_posterior_adjusted="figures/x.png"))
    (run_copy / "figures" / "x.png").symlink_to(tmp_path / "secret.txt")
    res = run_cli("report", run_copy)
    assert res.exit_code == 0, res.output
    html = (run_copy / "report.html").read_text()
    assert not _leaked(html)
    assert html.count("is missing.") == 3  # the three shown as missing, the others embedded
    assert html.count('src="data:image/png;base64,') > 3


def test_planted_links_at_the_report_names_are_never_followed(run_copy, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for name in (".report.md.tmp", ".report.html.tmp"):
        (run_copy / name).symlink_to(victim)
    (run_copy / "report.md").unlink()
    (run_copy / "report.md").symlink_to(victim)
    res = run_cli("report", run_copy)
    assert res.exit_code == 0, res.output
    assert victim.read_text() == "precious"
    md = run_copy / "report.md"
    assert not md.is_symlink() and "# " in md.read_text()


def _set(path: str, value):
    def fn(d):
        *head, last = path.split(".")
        node = d
        for k in head:
            node = node[int(k)] if isinstance(node, list) else node[k]
        node[last] = value

    return fn


@pytest.mark.parametrize(
    "key,value,expect",
    [  # results.json is validated strictly (pydantic)
        ("models.adjusted.treatment_effect.p_hr_below.1", 7.5, "less than or equal to 1"),
        ("reliable", "no", "valid boolean"),
        ("models.adjusted.reliable", 1, "valid boolean"),
        ("models.adjusted.treatment_effect.median", "0.7", "valid number"),
        ("models.adjusted.treatment_effect.lower", 3.0, "out of order"),
        ("models.adjusted.treatment_effect.level", 95, "less than 1"),
        ("models.adjusted.treatment_effect.n_draws", -4, "greater than or equal to 1"),
        ("models.adjusted.treatment_effect.median", -0.7, "greater than or equal to 0"),
        ("data.n", "many", "valid integer"),
        ("data.events", -1, "greater than or equal to 0"),
        ("kind", "patient-level", "Input should be 'patient_level'"),
        ("models.adjusted.coefficients", {"a": 1}, "valid array"),
        ("models.adjusted.diagnostics.divergences", "0", "valid integer"),
        ("models.adjusted.subgroups.groups.0.share", 1.7, "less than or equal to 1"),
        ("settings.level.source", "guessed", "Input should be 'config'"),
        (
            "flags",
            [{"code": "x", "message": "m", "severity": "fatal"}],
            "Input should be 'caution'",
        ),
    ],
)
def test_wrong_types_and_impossible_numbers_exit_2_naming_the_key(run_copy, key, value, expect):
    before = (run_copy / "report.md").read_text()
    _edit(run_copy, _set(key, value))
    res = run_cli("report", run_copy)
    assert res.exit_code == 2, res.output
    named = key.rsplit(".", 2)[0] if key.startswith("flags") else key
    if expect == "out of order":  # a check of the whole interval names the summary
        named = key.rsplit(".", 1)[0]
    assert named.split(".0.")[0] in res.stderr and expect in res.stderr, res.stderr
    assert (run_copy / "report.md").read_text() == before


@pytest.mark.parametrize(
    "text,expect",
    [
        ('{"schema_version": "2.0", "kind": NaN}', "not a JSON number"),
        ("not json", "not JSON"),
        ("\udcff", "not UTF-8"),
        ("[1, 2]", "not a JSON object"),
    ],
)
def test_unreadable_results_json_exits_2(run_copy, text, expect):
    (run_copy / "results.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    res = run_cli("report", run_copy)
    assert res.exit_code == 2 and expect in res.stderr, res.output


def test_report_on_a_file_or_a_missing_folder_exits_2(run_copy, tmp_path):
    for target in (run_copy / "results.json", tmp_path / "nowhere"):
        res = run_cli("report", target)
        assert res.exit_code == 2 and "not a folder" in res.stderr, res.output


def test_report_into_a_read_only_folder_exits_2_and_keeps_the_reports(run_copy):
    before = (run_copy / "report.md").read_bytes()
    run_copy.chmod(0o555)
    try:
        res = cli_process("report", run_copy, read_only_rules=True)
    finally:
        run_copy.chmod(0o755)
    assert res.returncode == 2, res.stderr
    assert "cannot be written" in res.stderr
    assert (run_copy / "report.md").read_bytes() == before
