"""Atomic writing of a run's outputs: everything goes to a hidden staging folder first, which
replaces ``outputs/<name>/`` in one rename only when the whole run has been written. A failed run
leaves the previous results untouched and no half-written folder behind."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import secrets
import shutil
import stat
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .escape import csv_frame
from .interrupts import deferred, note_committed, raise_if_interrupted


def jsonable(obj):
    """Plain JSON types (dataclasses and pydantic models as objects); NaN and infinities become
    null."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(dataclasses.asdict(obj))
    if hasattr(obj, "model_dump"):
        return jsonable(obj.model_dump(mode="json"))
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return None if not math.isfinite(f) else f
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dumps(obj) -> str:
    """``obj`` as indented JSON text (via :func:`jsonable`: NaN and ±inf become ``null``)."""
    return json.dumps(jsonable(obj), indent=2, sort_keys=False, ensure_ascii=False, allow_nan=False)


class OutputDir:
    """``with OutputDir(root, name) as out: out.write_json(...); ...`` then ``out.commit()``."""

    def __init__(self, root: str | Path, name: str, csv_label: str | None = None):
        self.csv_label = (
            csv_label  # e.g. "SYNTHETIC": written as a leading ``data`` column of every table
        )
        self.root = Path(root)
        self.final = self.root / name
        self.staging = self.root / f".{name}.staging-{os.getpid()}"
        self.committed = False

    def __enter__(self):
        self.root.mkdir(parents=True, exist_ok=True)
        recover_stale(self.root, self.final.name)
        if self.staging.exists():
            shutil.rmtree(self.staging)
        self.staging.mkdir()
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.staging.exists():
            shutil.rmtree(self.staging, ignore_errors=True)
        return False

    def path(self, rel: str) -> Path:
        p = self.staging / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write_text(self, rel: str, text: str) -> Path:
        p = self.path(rel)
        p.write_text(text, encoding="utf-8")
        return p

    def write_json(self, rel: str, obj) -> Path:
        return self.write_text(rel, dumps(obj) + "\n")

    def write_csv(self, rel: str, df: pd.DataFrame) -> Path:
        p = self.path(rel)
        if self.csv_label:
            df = df.assign(data=self.csv_label)[["data", *df.columns]]
        csv_frame(df).to_csv(p, index=False, float_format="%.6g")  # no spreadsheet formulas
        return p

    def commit(self) -> Path:
        """Swap the staging folder into place (two renames on the same filesystem)."""
        backup = self.root / f".{self.final.name}.old-{os.getpid()}"
        try:
            with deferred():  # a signal waits until both renames are done
                # a signal received while the outputs were written (even one a library caught
                # and swallowed) stops the run here: the previous results stay
                raise_if_interrupted()
                self._swap(backup)
                note_committed(self.final)  # a signal raised after this finds the outputs done
        finally:
            if self.committed and backup.exists():
                shutil.rmtree(backup, ignore_errors=True)
        return self.final

    def _swap(self, backup: Path) -> None:
        """Previous results to ``backup``, staging into place; on failure put the previous back."""
        moved = self.final.exists()
        if moved:
            self.final.rename(backup)
        try:
            self.staging.rename(self.final)
        except OSError:
            if moved:
                backup.rename(self.final)
            raise
        self.committed = True


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own leftovers from an earlier OutputDir are stale too
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_stale(root: Path, name: str) -> list[str]:
    """Tidy what a killed run left behind for ``name``: its staging folders are removed, and a
    backup of the previous results (killed between the two renames of a commit) is put back.
    Folders of a run that is still alive are left alone. Returns what was done, for the log."""
    done = []
    for p in sorted(Path(root).glob(f".{name}.old-*")):
        pid = p.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _pid_alive(int(pid)):
            final = Path(root) / name
            if not final.exists():
                p.rename(final)
                done.append(f"restored the previous results from {p.name}")
            else:
                shutil.rmtree(p, ignore_errors=True)
                done.append(f"removed {p.name}")
    for p in sorted(Path(root).glob(f".{name}.staging-*")):
        pid = p.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)
            done.append(f"removed the stale staging folder {p.name}")
    return done


def write_problem(path: Path) -> str | None:
    """Why a folder cannot be created and written to (the OS's reason), or None. A probe file is
    written and removed; the folder itself (and its parents) stay created."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".trialbayes-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return str(exc.strerror or exc)
    return None


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def read_nofollow(path: Path, limit: int | None = None) -> bytes | None:
    """A regular file's bytes, never read through a symbolic link; None if it does not exist.
    OSError for a link, a folder or a file larger than ``limit`` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except FileNotFoundError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise IsADirectoryError(f"{path} is not a regular file")
        if limit is not None and st.st_size > limit:
            raise OSError(f"{path} is larger than {limit} bytes")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    """``path`` replaced by ``data`` through a temporary file created exclusively (``O_EXCL``,
    ``O_NOFOLLOW``, a random name: a planted file or link is never followed or reused); the
    rename replaces a link at ``path`` itself, never the file it points to."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_together(writers: dict) -> None:
    """Write several files as one: ``writers`` maps each target path to ``write(tmp_path)``, which
    fills a temporary file created exclusively beside the target (random name, ``O_EXCL``: a
    planted file or link is never used); then all are renamed into place in one block that a
    signal cannot split, after checking that none arrived meanwhile (interrupts). On any failure
    the targets are untouched and the temporary files removed."""
    mask = os.umask(0)
    os.umask(mask)
    tmps: dict[Path, Path] = {}
    try:
        for target, write in writers.items():
            target = Path(target)
            fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            os.fchmod(fd, 0o666 & ~mask)
            os.close(fd)
            tmps[target] = Path(name)
            write(tmps[target])
        with deferred():
            raise_if_interrupted()
            for target, tmp in tmps.items():
                os.replace(tmp, target)
    finally:
        for tmp in tmps.values():
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
