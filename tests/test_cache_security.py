"""The compile cache never runs code it did not write (issue 15, cases 1, 2 and 7).

Every test plants something in a cache folder the way an attacker (or a disk fault) would: a
pickle whose unpickling creates a marker file, metadata whose text would be spliced into the
generated source, garbage and truncated files. The marker must never appear, the run must go on
(the entry compiled again and rewritten, one warning), and the next process must load the
rewritten entry from disk.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml
from test_compile_cache import SRC, X, Y, logp_grad, tiny_model

from trialbayes.inference import compile_cache as cc

TRUST_ENV_VAR = "TRIALBAYES_TRUST_CONFIG_CACHE"  # cache_trust's; spelt out so that this file
# also runs against code without it (each test was seen failing there)


def Signer(root):  # noqa: N802 - the class, imported late (see above)
    from trialbayes.core.cache_trust import Signer

    return Signer(root)


def folder_problem(folder, root):
    from trialbayes.core.cache_trust import folder_problem

    return folder_problem(folder, root)


class Payload:
    """Unpickling it creates ``marker`` (what a planted ``*.nbi`` / ``*.nbc`` would do)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _plant_pickles(cache: Path, marker: Path) -> list[Path]:
    files = sorted((cache / "numba").glob("*.nb[ic]"))
    assert files, "the cache holds no numba files to replace"
    for f in files:
        f.write_bytes(pickle.dumps(Payload(marker)))
    return files


def _crafted_meta(cache: Path, key: str, marker: Path) -> dict:
    """Text in ``n_expanded`` that, spliced into the expand callback's source, closes the
    function and runs ``open(marker)`` when the source is exec'd (its three occurrences leave a
    valid module: two triple-quoted strings swallow the template between them)."""
    meta = json.loads((cache / "meta" / f"{key}.json").read_text())
    meta["n_expanded"] = (
        f"1:\n        return -1\nopen({str(marker)!r}, 'w').close()\nx = \"\"\"\ny = '''\n"
        "def g():\n    try:\n        for i in range(1"
    )
    return meta


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    cc.clear_memory()
    getattr(cc, "_WARNED", set()).clear()
    monkeypatch.delenv(TRUST_ENV_VAR, raising=False)
    yield
    cc.clear_memory()


def _compile(cache):
    """Compile ``tiny_model`` as a new process would (no in-process tier, no warning yet)."""
    getattr(cc, "_WARNED", set()).clear()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        c, rec = cc.compile_model(tiny_model(Y), cache_dir=cache)
    cc.clear_memory()
    notes = [str(w.message) for w in seen if issubclass(w.category, RuntimeWarning)]
    return c, rec, notes


def test_planted_pickle_never_runs_and_the_entry_is_rewritten(tmp_path):
    cache, marker = tmp_path / "cache", tmp_path / "PWNED"
    _, first, _ = _compile(cache)
    _plant_pickles(cache, marker)
    c, rec, notes = _compile(cache)
    assert not marker.exists(), "a planted pickle was loaded"
    assert rec.source == "compiled" and len(notes) == 1 and "not used" in notes[0], notes
    assert logp_grad(c, X)[0] == logp_grad(_compile(cache)[0], X)[0]
    assert _compile(cache)[1].source == "disk"  # rewritten, and trusted again
    assert not marker.exists()


def test_crafted_metadata_is_never_spliced_into_source(tmp_path):
    cache, marker = tmp_path / "cache", tmp_path / "PWNED"
    _, first, _ = _compile(cache)
    meta = _crafted_meta(cache, first.key, marker)
    (cache / "meta" / f"{first.key}.json").write_text(json.dumps(meta))  # unsigned
    _, rec, notes = _compile(cache)
    assert not marker.exists() and rec.source == "compiled" and len(notes) == 1
    # even with a valid tag (a leaked key), the layout is validated before any source is built
    meta = _crafted_meta(cache, first.key, marker)
    Signer(cache).write(cache / "meta" / f"{first.key}.json", json.dumps(meta).encode())
    _, rec, notes = _compile(cache)
    assert not marker.exists() and rec.source == "compiled"
    assert len(notes) == 1 and "ValidationError" in notes[0], notes
    assert _compile(cache)[1].source == "disk"


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_damaged_numba_files_are_a_miss_and_repaired(tmp_path, damage):
    cache = tmp_path / "cache"
    _compile(cache)
    for f in sorted((cache / "numba").glob("*.nb[ic]")):
        data = f.read_bytes()
        f.write_bytes({"garbage": os.urandom(300), "truncated": data[: len(data) // 2],
                       "empty": b""}[damage])
    c, rec, notes = _compile(cache)
    assert rec.source == "compiled" and len(notes) == 1, notes
    assert _compile(cache)[1].source == "disk"


def test_verified_bytes_that_do_not_unpickle_are_a_miss(tmp_path):
    """A file whose tag verifies but whose content is damaged (written by a broken numba)."""
    cache = tmp_path / "cache"
    _compile(cache)
    signer = Signer(cache)
    for f in sorted((cache / "numba").glob("*.nb[ic]")):
        signer.write(f, b"\x80\x05garbage")
    _, rec, notes = _compile(cache)
    assert rec.source == "compiled" and len(notes) == 1
    assert _compile(cache)[1].source == "disk"


def test_folder_writable_by_others_or_of_another_user_is_not_read(tmp_path):
    cache, marker = tmp_path / "cache", tmp_path / "PWNED"
    _, first, _ = _compile(cache)
    signer = Signer(cache)  # planted files carry valid tags: only the folder check stands
    for f in sorted((cache / "numba").glob("*.nb[ic]")):
        signer.write(f, pickle.dumps(Payload(marker)))
    (cache / "numba").chmod(0o777)
    assert "writable by others" in folder_problem(cache / "numba", cache)
    _, rec, notes = _compile(cache)
    assert not marker.exists() and rec.source == "compiled"
    assert len(notes) == 1 and "not usable" in notes[0] and "writable by others" in notes[0]
    (cache / "numba").chmod(0o700)
    if os.geteuid() == 0:  # root can hand the folder to another user
        os.chown(cache / "numba", 65534, 65534)
        assert "another user" in folder_problem(cache / "numba", cache)
        _, rec, _ = _compile(cache)
        assert not marker.exists() and rec.source == "compiled"


def test_a_link_inside_the_cache_is_not_followed(tmp_path):
    cache, elsewhere = tmp_path / "cache", tmp_path / "elsewhere"
    _compile(cache)
    (cache / "numba").rename(elsewhere)
    (cache / "numba").symlink_to(elsewhere)
    _, rec, notes = _compile(cache)
    assert rec.source == "compiled" and "not a folder" in " ".join(notes)


# ----------------------------------------------------------------------------- the two routes


CHILD = r"""
import sys, warnings
sys.path.insert(0, sys.argv[1])
from test_compile_cache import tiny_model, Y
from trialbayes.config.schema import load_config
from trialbayes.inference.sampler import SamplerRunner as Sampler
warnings.simplefilter("always")
cfg = load_config(sys.argv[2])
s = Sampler(tiny_model(Y), cfg.sampler).compile()
print(s.compile_source)
"""


def _child(config: Path, env: dict) -> tuple[str, str]:
    """A new process compiling a model with a config's sampler settings (its cache)."""
    p = subprocess.run([sys.executable, "-c", CHILD, str(Path(__file__).parent), str(config)],
                       env={**os.environ, "PYTHONPATH": SRC, **env}, capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stdout.strip().splitlines()[-1], p.stderr


def _config(folder: Path, cache_dir: str | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    raw = {"name": "x", "data": {"kind": "file", "path": "d.csv"}, "models": [{"name": "u"}]}
    if cache_dir:
        raw["sampler"] = {"cache_dir": cache_dir}
    (folder / "config.yaml").write_text(yaml.safe_dump(raw))
    return folder / "config.yaml"


@pytest.mark.slow  # four new processes, each compiling
def test_config_shipped_with_a_planted_cache_folder(tmp_path):
    """``sampler.cache_dir: .tbcache`` beside the config, its pickles planted: not used without
    the opt-in (the user cache is, with one warning); with it, verified and rewritten."""
    bundle, marker, user_cache = tmp_path / "bundle", tmp_path / "PWNED", tmp_path / "user"
    cfg = _config(bundle, ".tbcache")
    env = {cc.ENV_VAR: str(user_cache)}
    src, err = _child(cfg, {**env, TRUST_ENV_VAR: "1"})  # what the sender did: a real cache
    assert src == "compiled" and (bundle / ".tbcache" / "numba").is_dir()
    _plant_pickles(bundle / ".tbcache", marker)
    src, err = _child(cfg, env)
    assert not marker.exists()
    assert "relative to the config" in err and TRUST_ENV_VAR in err
    assert src == "compiled" and (user_cache / "meta").is_dir()  # the user cache instead
    src, err = _child(cfg, {**env, TRUST_ENV_VAR: "1"})  # opted in: verified, so a miss
    assert not marker.exists() and src == "compiled" and err.count("not used") == 1
    assert _child(cfg, {**env, TRUST_ENV_VAR: "1"})[0] == "disk"  # rewritten with our tags


@pytest.mark.slow  # four new processes, each compiling
def test_shared_environment_cache_with_planted_pickles_and_metadata(tmp_path):
    shared, marker = tmp_path / "shared", tmp_path / "PWNED"
    cfg = _config(tmp_path / "cfg", None)
    env = {cc.ENV_VAR: str(shared)}
    assert _child(cfg, env)[0] == "compiled"
    key = next((shared / "meta").glob("*.json")).stem
    meta = _crafted_meta(shared, key, marker)
    (shared / "meta" / f"{key}.json").write_text(json.dumps(meta))
    src, err = _child(cfg, env)
    assert not marker.exists() and src == "compiled" and err.count("not used") == 1
    _plant_pickles(shared, marker)
    src, err = _child(cfg, env)
    assert not marker.exists() and src == "compiled"
    assert _child(cfg, env)[0] == "disk"


def test_the_key_is_private_and_a_readable_key_is_refused(tmp_path, monkeypatch):
    from trialbayes.core.cache_trust import key_path, user_key

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    key = user_key()
    path = key_path()
    assert len(key) == 32 and user_key() == key and not path.is_relative_to(tmp_path / "cache")
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    path.chmod(0o644)  # another user could read it, and forge tags
    _, rec, notes = _compile(tmp_path / "cache")
    assert rec.source == "compiled" and "readable by others" in " ".join(notes)
    meta = tmp_path / "cache" / "meta"
    assert not meta.exists() or not any(meta.iterdir())  # nothing written with that key


def test_a_configured_cache_folder_others_can_write_is_exit_2(tmp_path):
    from helpers import run_cli, write_case

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    cfg = write_case(tmp_path / "case", config={"sampler": {"cache_dir": str(shared)}})
    res = run_cli("check", cfg)
    assert res.exit_code == 2, res.output
    assert "sampler.cache_dir" in res.stderr and "writable by others" in res.stderr
