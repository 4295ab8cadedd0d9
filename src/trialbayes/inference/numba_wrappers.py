"""C callbacks for nutpie, generated as plain source so that numba can cache them on disk.

nutpie 0.16 wraps the PyTensor logp/gradient and expand functions in ``numba.cfunc`` closures
that unpack the shared data with ``literal_unroll`` and capture the data arrays as constants:
about 90% of a model's compile time (measured: 19 of 21 s for the adjusted model) and never
cacheable ("uses dynamic globals"). Here the same two callbacks, with the same C signatures and
the same ``user_data`` record layout (so nutpie's ``with_data`` keeps working), are written out as
straight-line source: every shared array is read at a fixed word offset of the record. They
compile in a fraction of the time and are cached by numba under a key we choose
(:class:`_Locator`), in a directory we choose.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from weakref import WeakKeyDictionary

import numba
import numpy as np
from numba.core.caching import CacheImpl, FunctionCache, IndexDataCacheFile, _CacheLocator
from numba.core.ccallback import CFunc

from ..core.cache_trust import UntrustedCache

#: bump when the generated source changes in a way the key below would not see
WRAPPER_VERSION = "2"

_KEYS: WeakKeyDictionary = WeakKeyDictionary()  # generated function -> (cache dir, disambiguator)


class _Locator(_CacheLocator):
    """Points numba's cache for our generated functions at our directory and our key."""

    def __init__(self, py_func, py_file, cache_dir: str, key: str):
        self._py_func, self._py_file, self._dir, self._key = py_func, py_file, cache_dir, key

    def ensure_cache_path(self):
        pass  # created by compile_cache before any compilation

    def get_cache_path(self):
        return self._dir

    def get_source_stamp(self):
        return WRAPPER_VERSION

    def get_disambiguator(self):
        return self._key

    @classmethod
    def from_function(cls, py_func, py_file):
        found = _KEYS.get(py_func)
        return None if found is None else cls(py_func, py_file, *found)


if _Locator not in CacheImpl._locator_classes:
    CacheImpl._locator_classes.insert(0, _Locator)


class _VerifiedFiles(IndexDataCacheFile):
    """numba's index and data files, read only after their bytes verify
    (:mod:`trialbayes.core.cache_trust`): nothing unverified is ever unpickled. Anything that fails
    is a miss, told to ``on_miss``."""

    def __init__(self, cache_path, filename_base, source_stamp, signer, on_miss):
        super().__init__(cache_path, filename_base, source_stamp)
        self._signer, self._on_miss = signer, on_miss

    def _read(self, path: str) -> bytes | None:
        try:
            return self._signer.read(Path(path))
        except UntrustedCache as exc:
            self._on_miss(str(exc))
            return None

    def _load_index(self):
        data = self._read(self._index_path)
        if data is None:
            return {}
        try:
            f = io.BytesIO(data)
            if pickle.load(f) != self._version:  # verified: our own bytes  # noqa: S301
                return {}
            stamp, overloads = pickle.loads(f.read())  # noqa: S301
        except Exception as exc:  # noqa: BLE001 - a verified but unreadable index is a miss
            self._on_miss(f"unreadable index ({type(exc).__name__})")
            return {}
        return overloads if stamp == self._source_stamp else {}

    def _save_index(self, overloads):
        head = pickle.dumps(self._version, protocol=-1)
        body = self._dump((self._source_stamp, overloads))
        self._signer.write(Path(self._index_path), head + body)

    def _load_data(self, name):
        data = self._read(self._data_path(name))
        if data is None:
            raise OSError("unverified")  # IndexDataCacheFile.load: OSError -> None (a miss)
        return pickle.loads(data)  # verified: our own bytes  # noqa: S301

    def _save_data(self, name, data):
        self._signer.write(Path(self._data_path(name)), self._dump(data))


class _VerifiedCache(FunctionCache):
    """numba's per-function cache with :class:`_VerifiedFiles`; a load that fails in any way
    (damaged, truncated, from another numba) is a miss, never an error."""

    def __init__(self, py_func, signer, on_miss: Callable[[str], None]):
        super().__init__(py_func)
        f = self._cache_file
        self._cache_file = _VerifiedFiles(
            f._cache_path, self._impl.filename_base, f._source_stamp, signer, on_miss
        )
        self._on_miss = on_miss

    def load_overload(self, sig, target_context):
        try:
            return super().load_overload(sig, target_context)
        except Exception as exc:  # noqa: BLE001 - e.g. object code that no longer links
            self._on_miss(f"unloadable entry ({type(exc).__name__})")
            return None


@numba.extending.intrinsic
def _as_void_pointer(typingctx, src):
    """An integer address as a ``void*`` (same as nutpie's ``address_as_void_pointer``)."""
    sig = numba.types.voidptr(src)

    def codegen(cgctx, builder, sig, args):
        return builder.inttoptr(args[0], numba.core.cgutils.voidptr_t)

    return sig, codegen


LOGP_SIG = numba.types.int64(
    numba.types.uint64,
    numba.types.CPointer(numba.types.double),
    numba.types.CPointer(numba.types.double),
    numba.types.CPointer(numba.types.double),
    numba.types.voidptr,
)
EXPAND_SIG = numba.types.int64(
    numba.types.uint64,
    numba.types.uint64,
    numba.types.CPointer(numba.types.double),
    numba.types.CPointer(numba.types.double),
    numba.types.voidptr,
)


@dataclass(frozen=True)
class SharedSlot:
    """Where one shared array's pointer, size and shape sit in nutpie's user_data record (words)."""

    data: int
    shape: tuple[int, ...]


def record_slots(record_dtype: np.dtype, keys: list[str]) -> dict[str, SharedSlot]:
    """Word offsets of each key's data pointer and shape entries in nutpie's record layout."""
    shared, base = record_dtype.fields["shared"]
    out = {}
    for key in keys:
        d_dt, d_off = shared.fields["data"][0].fields[key]
        s_dt, s_off = shared.fields["shape"][0].fields[key]
        d_off += base + shared.fields["data"][1]
        s_off += base + shared.fields["shape"][1]
        ndim = s_dt.shape[0] if s_dt.shape else 0
        if d_off % 8 or s_off % 8 or d_dt.itemsize != 8:
            raise ValueError("unexpected nutpie user_data layout")
        out[key] = SharedSlot(d_off // 8, tuple(s_off // 8 + i for i in range(ndim)))
    return out


#: the dtypes a shared array may have in generated source (written from this table, never from
#: the text of a cache entry)
DTYPES = {d: d for d in ("float64", "float32", "int64", "int32", "int16", "int8", "uint64",
                         "uint32", "uint16", "uint8", "bool")}


def _n(v, lo: int = 0, hi: int = 10**9) -> int:
    """An integer for generated source: a real int in [lo, hi], else ValueError."""
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or not lo <= int(v) <= hi:
        raise ValueError(f"not an integer in [{lo}, {hi}]: {v!r}")
    return int(v)


def _unpack_lines(
    slots: dict[str, SharedSlot], order: list[str], dtypes: dict[str, str]
) -> list[str]:
    lines = []
    for i, key in enumerate(order):
        s = slots[key]
        shape = "(" + "".join(f"int(u[{_n(w)}]), " for w in s.shape) + ")"
        dtype = DTYPES[np.dtype(dtypes[key]).name]  # KeyError for anything else
        lines.append(f"        a{i} = carray(ptr(u[{_n(s.data)}]), {shape}, np.{dtype})")
    return lines


#: CPython builds a call or tuple of more items than this through a list (LIST_TO_TUPLE), which
#: numba cannot compile; longer argument lists are passed as a sum of shorter tuples
_MAX_ITEMS = 24


def _inner_call(n_args: int) -> tuple[list[str], str]:
    """(lines before, the call) of ``inner(x, a0, a1, ...)`` for ``n_args`` shared arrays."""
    names = ["x"] + [f"a{i}" for i in range(n_args)]
    if len(names) <= _MAX_ITEMS:
        return [], f"inner({', '.join(names)})"
    chunks = [names[i : i + _MAX_ITEMS] for i in range(0, len(names), _MAX_ITEMS)]
    tup = " + ".join("(" + ", ".join(c) + ",)" for c in chunks)
    return [f"        args = {tup}"], "inner(*args)"


def logp_source(n_dim: int, n_words: int, slots, order, dtypes) -> str:
    """The log-density callback's source; every number in it passes :func:`_n`."""
    n_dim, n_words = _n(n_dim, 1), _n(n_words)
    before, call = _inner_call(len(order))
    return "\n".join(
        [
            "def trialbayes_logp(dim, x_, out_, logp_, user_data_):",
            f"    if dim != {n_dim}:",
            "        return -1",
            "    try:",
            f"        u = carray(user_data_, ({n_words},), np.uint64)",
            *_unpack_lines(slots, order, dtypes),
            f"        x = carray(x_, ({n_dim},))",
            f"        out = carray(out_, ({n_dim},))",
            "        logp = carray(logp_, ())",
            *before,
            f"        logp_val, grad = {call}",
            "        logp[()] = logp_val",
            f"        for i in range({n_dim}):  # a loop: out[...] = grad costs ~5 s to compile",
            "            out[i] = grad[i]",
            f"        for i in range({n_dim}):",
            "            if not np.isfinite(out[i]):",
            "                return 3",
            "        if not np.isfinite(logp_val):",
            "            return 4",
            "    except Exception:",
            "        return 1",
            "    return 0",
            "",
        ]
    )


def expand_source(n_dim: int, n_expanded: int, n_words: int, slots, order, dtypes) -> str:
    """The expand callback's source; every number in it passes :func:`_n`."""
    n_dim, n_expanded, n_words = _n(n_dim, 1), _n(n_expanded), _n(n_words)
    before, call = _inner_call(len(order))
    return "\n".join(
        [
            "def trialbayes_expand(dim, expanded, x_, out_, user_data_):",
            f"    if dim != {n_dim}:",
            "        return -1",
            f"    if expanded != {n_expanded}:",
            "        return -1",
            "    try:",
            f"        u = carray(user_data_, ({n_words},), np.uint64)",
            *_unpack_lines(slots, order, dtypes),
            f"        x = carray(x_, ({n_dim},))",
            f"        out = carray(out_, ({n_expanded},))",
            *before,
            f"        (values,) = {call}",
            f"        for i in range({n_expanded}):",
            "            out[i] = values[i]",
            "    except Exception:",
            "        return -2",
            "    return 0",
            "",
        ]
    )


class _NeverCompiled:
    """Stands in for the PyTensor kernel when a callback is loaded from disk: if numba ever tried
    to compile the wrapper against it, typing fails loudly instead of producing wrong code."""


def make_cfunc(
    src: str, sig, inner, cache_dir: str | None, key: str, signer=None, on_miss=None
) -> CFunc:
    """A C callback from generated source. With ``cache_dir`` (and its ``signer``, see
    :mod:`cache_trust`), numba's disk cache under ``key`` + a hash of the source is used, and
    a cache file is loaded only after it verifies (``on_miss(reason)`` hears of any that does
    not). ``inner=None`` means load-only: None on a miss."""
    env = {
        "__name__": __name__,
        "np": np,
        "carray": numba.carray,
        "ptr": _as_void_pointer,
        "inner": inner if inner is not None else _NeverCompiled(),
    }
    local: dict = {}
    exec(compile(src, "<trialbayes-generated>", "exec"), env, local)  # noqa: S102 - our source
    fn = next(iter(local.values()))
    fn.__source__ = src
    cf = CFunc(fn, (sig.args, sig.return_type), locals={}, options={})
    if cache_dir is not None:
        if signer is None:
            raise ValueError("a disk cache needs a signer (cache_trust.Signer)")
        _KEYS[fn] = (cache_dir, hashlib.sha256((key + src).encode()).hexdigest()[:32])
        cf._cache = _VerifiedCache(fn, signer, on_miss or (lambda why: None))
    if inner is not None:
        with warnings.catch_warnings():  # uncacheable code is reported by cacheable(), not warned
            warnings.filterwarnings("ignore", "Cannot cache compiled function", numba.NumbaWarning)
            cf.compile()  # from the cache when a verified entry exists, else compiled and saved
        return cf
    cres = cf._cache.load_overload(cf._sig, cf._targetdescr.target_context)
    if cres is None:
        return None
    # what CFunc.compile does after a cache hit (numba 0.68), without a second load
    cf._cache_hits += 1
    cf._library = cres.library
    cf._wrapper_name = cres.fndesc.llvm_cfunc_wrapper_name
    cf._wrapper_address = cf._library.get_pointer_to_function(cf._wrapper_name)
    return cf


def loaded_from_cache(cf: CFunc) -> bool:
    """Whether the compiled function was loaded from the disk cache rather than compiled."""
    return cf.cache_hits > 0


def cacheable(cf: CFunc) -> bool:
    """False when numba refused to cache (dynamic globals, e.g. arrays > 1 MB in the graph)."""
    return not cf._library.has_dynamic_globals
