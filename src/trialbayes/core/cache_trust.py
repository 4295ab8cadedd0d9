"""What the compile cache may load: folders only the user can write, files only the user wrote.

numba stores compiled code as pickles (index ``*.nbi``, data ``*.nbc``) and loading a pickle can
run code, so a cache file is read only when both hold:

* its folder, and every folder up to the cache root, is owned by this user and not writable by
  the group or others (:func:`folder_problem`; POSIX only), and
* its bytes carry a valid HMAC-SHA256 tag made with this user's secret key (:func:`user_key`,
  32 random bytes in ``platformdirs.user_state_dir('trialbayes')/cache-hmac.key``, mode 0600,
  created on first use, never inside a cache folder). Tags live apart from the files, under
  ``<cache>/tags/``; a tag binds the file's path inside the cache to its content.

Files are opened with ``O_NOFOLLOW`` and written through ``O_EXCL`` temporary files renamed into
place. Anything that fails a check is a miss: the caller compiles and rewrites the entry.

A ``sampler.cache_dir`` written relative to its config (a folder that may have come with the
config) is not used unless the user opts in with ``TRIALBAYES_TRUST_CONFIG_CACHE=1`` (or the CLI's
``--trust-config-cache``); even then the two checks above apply.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

import platformdirs

from .outputs import read_nofollow as _read
from .outputs import write_atomic

#: opt-in for a ``sampler.cache_dir`` relative to the config file
TRUST_ENV_VAR = "TRIALBAYES_TRUST_CONFIG_CACHE"
KEY_NAME = "cache-hmac.key"
_KEY_BYTES = 32
_DOMAIN = b"trialbayes-compile-cache-v1\0"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class UntrustedCache(OSError):
    """The cache folder or the key cannot be trusted; the message says why."""


def trust_config_cache() -> bool:
    """Whether the user opted in (``TRIALBAYES_TRUST_CONFIG_CACHE=1``) to a ``sampler.cache_dir``
    written relative to the config file."""
    return os.environ.get(TRUST_ENV_VAR, "").strip().lower() in ("1", "yes", "true", "on")


def key_path() -> Path:
    """Where this user's compile-cache HMAC key lives (outside any cache folder)."""
    return Path(platformdirs.user_state_dir("trialbayes")) / KEY_NAME


def _posix() -> bool:
    return os.name == "posix"


def _own_and_private(st: os.stat_result, what: str, bits: int) -> str | None:
    """Why a file or folder is not this user's own, or is open to others through ``bits``."""
    if not _posix():
        return None
    if st.st_uid != os.geteuid():
        return f"{what} belongs to another user (uid {st.st_uid})"
    if st.st_mode & bits:
        how, fix = ("writable", "go-w") if bits == 0o022 else ("readable", "go-rwx")
        return f"{what} is {how} by others (mode {stat.S_IMODE(st.st_mode):o}; chmod {fix})"
    return None


def folder_problem(folder: Path, root: Path) -> str | None:
    """Why ``folder`` (inside ``root``, or ``root`` itself) cannot be trusted, or None: each folder
    from ``folder`` up to ``root`` must be a real folder (no link below the root), owned by this
    user and not writable by group or others."""
    folder, root = Path(folder), Path(root)
    chain = [folder, *folder.parents]
    if root not in chain:
        return f"{folder} is not inside {root}"
    for p in chain[: chain.index(root) + 1]:
        try:
            st = os.lstat(p) if p != root else os.stat(p)  # the root itself may be a link
        except OSError as exc:
            return f"{p}: {exc.strerror or exc}"
        if not stat.S_ISDIR(st.st_mode):
            return f"{p} is not a folder (a link or a file)"
        why = _own_and_private(st, str(p), 0o022)
        if why:
            return why
    return None


def make_private_dir(p: Path) -> None:
    """Create ``p`` and any missing parents as folders only this user can use (0700, whatever
    the umask); existing folders are left as they are."""
    missing = []
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for q in reversed(missing):
        try:
            q.mkdir(mode=0o700)
        except FileExistsError:
            pass


def user_key() -> bytes:
    """This user's cache key, created on first use (mode 0600 in a 0700 folder)."""
    path = key_path()
    if not path.exists():
        make_private_dir(path.parent)
        tmp = path.with_name(f".{KEY_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
        try:
            os.write(fd, secrets.token_bytes(_KEY_BYTES))
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # atomic and never replaces a key another process made first
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    try:
        st = os.fstat(fd)
        why = _own_and_private(st, f"the cache key {path}", 0o077)
        if why or not stat.S_ISREG(st.st_mode):
            raise UntrustedCache(why or f"the cache key {path} is not a regular file")
        key = os.read(fd, _KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(key) != _KEY_BYTES:
        raise UntrustedCache(f"the cache key {path} is damaged (delete it; it is remade)")
    return key


class Signer:
    """Tags and checks the files of one cache root with this user's key."""

    def __init__(self, root: Path, key: bytes | None = None):
        self.root = Path(root)
        self._key = user_key() if key is None else key

    def _tag_path(self, path: Path) -> Path:
        return self.root / "tags" / path.relative_to(self.root)

    def _mac(self, path: Path, data: bytes) -> bytes:
        rel = path.relative_to(self.root).as_posix().encode()
        return hmac.new(self._key, _DOMAIN + rel + b"\0" + data, hashlib.sha256).digest()

    def write(self, path: Path, data: bytes) -> None:
        """Write ``data`` to ``path`` and its tag, each by an exclusive temp file and a rename."""
        path = Path(path)
        write_atomic(path, data, mode=0o600)
        tag = self._tag_path(path)
        make_private_dir(tag.parent)
        write_atomic(tag, self._mac(path, data), mode=0o600)

    def read(self, path: Path) -> bytes | None:
        """The bytes of ``path`` if its folder is trusted and its tag verifies, else None (absent)
        — raising :class:`UntrustedCache` with the reason when it exists but fails a check."""
        path = Path(path)
        data = read_nofollow(path)
        if data is None:
            return None
        why = folder_problem(path.parent, self.root)
        if why:
            raise UntrustedCache(why)
        tag = read_nofollow(self._tag_path(path))
        if tag is None or not hmac.compare_digest(tag, self._mac(path, data)):
            raise UntrustedCache(f"{path.name} does not carry this user's tag")
        return data


def read_nofollow(path: Path) -> bytes | None:
    """:func:`outputs.read_nofollow`, any refusal as :class:`UntrustedCache`."""
    try:
        return _read(path)
    except OSError as exc:
        raise UntrustedCache(f"{Path(path).name}: {exc.strerror or exc}") from None
