"""Compile a PyMC model for nutpie once per model structure, in a process and across processes.

:func:`compile_model` returns nutpie's ``CompiledPyMCModel`` for a PyMC model. The model is keyed by
:func:`structure_key`: a hash of its log-density and trace graphs (every Op with its full pickled
state, every constant's bytes, the name and type of every ``pm.Data``, the parameter shapes),
of the transforms, of the PyTensor settings that change the compiled code and of the versions of
the whole stack (Python, NumPy, numba, llvmlite, PyTensor, PyMC, nutpie, this wrapper). Data
*values* are not in the key: they are read from the new model at every hit, and nutpie's
``with_data`` swaps them later, so a refit on new data of any size, or under new prior
hyperparameters held in ``pm.Data``, reuses the compiled code; a new covariate set, baseline
grid, prior family or library version is a new key. A graph that cannot be hashed (an Op
property that cannot be identified, two shared variables with one name) is compiled and never
cached.

Three tiers: a dictionary in this process (nothing compiled); a disk cache
(the config key ``sampler.cache_dir``, else ``$TRIALBAYES_CACHE_DIR``, else
``platformdirs.user_cache_dir('trialbayes')/compiled``; ``off`` disables it) holding a JSON
layout per key and numba's object code of the two C callbacks (:mod:`numba_wrappers`), so a new
process rebuilds the model without running PyTensor's rewrites or numba; and a fresh compile.
Writers take a per-key file lock and write every file by an exclusive temp file and a rename.

The disk tier trusts nothing it did not write (:mod:`cache_trust`): its folders must be this
user's and not writable by others, every file is read only after its HMAC tag (this user's
secret key) verifies, and the JSON layout is then validated by type and range
(:class:`EntryMeta`); the callbacks' source is generated from those validated numbers only. A
file that fails any check is a miss: compiled again and rewritten, with one warning line.

The key is computed from the graph before PyTensor rewrites it; the rewrites are a deterministic
function of that graph, the PyTensor version and the settings in the key. An Op is identified by
its class and ``__props__`` (PyTensor's own equality contract) plus any inner graph; a property
that cannot be identified across processes (a lambda, a closure) makes the model uncacheable.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import threading
import time
import warnings
from dataclasses import dataclass
from hashlib import sha256
from importlib import metadata
from pathlib import Path

import numpy as np
import platformdirs
import pytensor
from filelock import FileLock
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pymc.initial_point import make_initial_point_fn
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant
from pytensor.graph.traversal import graph_inputs, toposort

from ..core.cache_trust import Signer, UntrustedCache, folder_problem, make_private_dir
from ..core.outputs import write_problem
from . import numba_wrappers as nw

ENV_VAR = "TRIALBAYES_CACHE_DIR"
#: ``TRIALBAYES_COMPILER=nutpie``: nutpie's own compilation, no cache (the reference in bench/)
COMPILER_ENV_VAR = "TRIALBAYES_COMPILER"
_STACK = ("numpy", "numba", "llvmlite", "pytensor", "pymc", "nutpie")
_MEMO: dict[str, tuple[dict, object, object]] = {}
_LOCK = threading.Lock()
#: how each compile_model call was served, for tests and benchmarks
STATS = {"compiled": 0, "memory": 0, "disk": 0, "uncached": 0}


class _StrictModel(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


@dataclass(frozen=True)
class CompileRecord:
    """How a compiled model was obtained: ``source`` is 'memory', 'disk', 'compiled' (fresh, now
    cached) or 'uncached' (fresh, graph not hashable or cache off)."""

    key: str | None
    source: str
    seconds: float


def default_cache_dir() -> Path | None:
    """The compile cache folder: ``$TRIALBAYES_CACHE_DIR`` (None if it says off), else the user
    cache folder's ``compiled/``."""
    env = os.environ.get(ENV_VAR)
    if env is not None:
        return None if env.strip().lower() in _OFF else Path(env)

    return Path(platformdirs.user_cache_dir("trialbayes")) / "compiled"


_OFF = ("", "0", "off", "none", "false")


def configured_cache_dir(setting: str | None) -> Path | None | bool:
    """``compile_model``'s ``cache_dir`` for a ``sampler.cache_dir`` setting. Precedence: the
    config key (a folder, or 'off') > ``$TRIALBAYES_CACHE_DIR`` > the user cache folder."""
    if setting is None:
        return True  # default_cache_dir(): the environment, else the user cache folder
    return None if setting.strip().lower() in _OFF else Path(setting).expanduser()


def cache_dir_problem(path: Path) -> str | None:
    """Why a compile cache folder cannot be used (created, written, trusted: this user's and not
    writable by others), or None. Nothing is left behind but the folder itself."""
    return write_problem(path) or folder_problem(path, path)


class CacheWarning(RuntimeWarning):
    """A compile cache folder or entry that is not used (the run compiles instead)."""


_WARNED: set[str] = set()


def _warn_once(what: str, msg: str) -> None:
    if what not in _WARNED:
        _WARNED.add(what)
        warnings.warn(msg, CacheWarning, stacklevel=3)


# ----------------------------------------------------------------------------- key


def _stack_fingerprint(model) -> list:
    cfg = pytensor.config
    return [
        platform.python_version(),
        platform.machine(),
        nw.WRAPPER_VERSION,
        nw.__name__,  # numba's cached entries refer to the wrappers' module by this path
        *(metadata.version(p) for p in _STACK),
        cfg.floatX,
        cfg.numba__fastmath,
        cfg.optimizer_including,
        cfg.optimizer_excluding,
        cfg.optimizer_requiring,
        bool(model.check_bounds),
    ]


def _value_key(v):
    """A process-independent key of an Op property (or of anything an Op holds)."""
    # lazy: PyTensor's numba backend loads numba (seconds); only a nutpie compilation needs it
    from pytensor.graph.op import Op
    from pytensor.link.numba.cache import hash_from_pickle_dump
    from pytensor.link.numba.dispatch.basic import cache_key_for_constant

    if isinstance(v, Op):
        return _op_key(v)
    if isinstance(v, np.ndarray | np.generic):
        return cache_key_for_constant(v)
    if isinstance(v, tuple | list):
        return tuple(_value_key(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((repr(k), _value_key(x)) for k, x in v.items()))
    if v is None or isinstance(v, str | int | float | bool):
        return repr(v)
    if isinstance(v, type) or callable(v) and hasattr(v, "__qualname__"):
        return _importable_name(v)
    if hasattr(v, "inputs") and hasattr(v, "outputs"):  # an inner (Frozen)FunctionGraph
        return _graph_fingerprint(
            list(v.outputs), {x: ("input", i, str(x.type)) for i, x in enumerate(v.inputs)}
        )[0]
    if type(v).__module__.startswith("pytensor") and "Type" in type(v).__name__:
        return repr(v)
    return hash_from_pickle_dump(v)


def _importable_name(f) -> str:
    """module.qualname of a class or function that is found again under that name (a lambda or a
    closure is not: two of them could share a name, so they make the graph unhashable)."""
    try:
        obj = importlib.import_module(f.__module__)
        for part in f.__qualname__.split("."):
            obj = getattr(obj, part)
    except (AttributeError, ImportError, TypeError) as err:
        raise ValueError(f"{f!r} cannot be identified by name") from err
    if obj is not f:
        raise ValueError(f"{f!r} cannot be identified by name")
    return f"{f.__module__}.{f.__qualname__}"


def _op_key(op) -> tuple:
    """Type and ``__props__`` (PyTensor's equality contract), plus any inner graph."""
    cls = f"{type(op).__module__}.{type(op).__qualname__}"
    props = getattr(op, "__props__", None)
    body = (
        tuple((p, _value_key(getattr(op, p))) for p in props)
        if props is not None
        else ("state", _value_key({k: x for k, x in vars(op).items() if not k.startswith("_")}))
    )
    inner = getattr(op, "fgraph", None)
    return (cls, body, _value_key(inner) if inner is not None else None)


def _graph_fingerprint(outputs, leaves: dict) -> tuple[list, dict[str, SharedVariable]]:
    """Every Apply in topological order as (Op key, input coordinates); leaves: those given in
    ``leaves`` (value variables, inner inputs), shared variables by (name, type), constants by
    data hash."""
    # lazy: PyTensor's numba backend loads numba (seconds); only a nutpie compilation needs it
    from pytensor.link.numba.dispatch.basic import cache_key_for_constant

    coord, shared, items, op_keys = {}, {}, [], {}
    for leaf in (v for v in graph_inputs(outputs) if v.owner is None):
        if leaf in leaves:
            tag = leaves[leaf]
        elif isinstance(leaf, SharedVariable):
            if leaf.name is None or shared.setdefault(leaf.name, leaf) is not leaf:
                raise ValueError(f"shared variable without a unique name: {leaf.name}")
            tag = ("shared", leaf.name, str(leaf.type))
        elif isinstance(leaf, Constant):
            tag = ("const", cache_key_for_constant(leaf.data), str(leaf.type))
        else:
            raise ValueError(f"unexpected free input {leaf}")
        coord[leaf] = tag
    for j, node in enumerate(toposort(outputs)):
        if node.op not in op_keys:
            op_keys[node.op] = sha256(repr(_op_key(node.op)).encode()).hexdigest()
        items.append((op_keys[node.op], tuple(coord[v] for v in node.inputs)))
        coord.update({o: (j, k) for k, o in enumerate(node.outputs)})
    items.append(tuple(coord[o] for o in outputs))
    return items, shared


def _transform_key(t):
    return None if t is None else (_importable_name(type(t)), _value_key(vars(t)))


def structure_key(model) -> tuple[str | None, dict[str, SharedVariable]]:
    """(key, shared variables by name) of a PyMC model; key None when it cannot be hashed."""
    from nutpie.compile_pymc import _compute_shapes  # lazy: nutpie takes ~3 s to import

    values = [model.rvs_to_values[rv] for rv in model.free_RVs]
    value_names = {v: ("value", v.name, str(v.type)) for v in values}
    trace = list(model.unobserved_value_vars)
    try:
        graph, shared = _graph_fingerprint([model.logp(), *trace], value_names)
        transforms = [
            (v.name, _transform_key(model.rvs_to_transforms.get(rv)))
            for rv, v in zip(model.free_RVs, values)
        ]
    except Exception:  # noqa: BLE001 - anything unhashable is simply not cached
        return None, {}
    shapes = [(k, tuple(int(d) for d in v)) for k, v in _compute_shapes(model).items()]
    parts = [_stack_fingerprint(model), transforms, shapes, [v.name for v in trace], graph]
    return sha256(repr(parts).encode()).hexdigest(), shared


# ----------------------------------------------------------------------------- assembly


def _layout(shared_names, dtypes, ndims):
    from nutpie.compile_pymc import make_user_data  # lazy: nutpie takes ~3 s to import

    keys = {_Named(n, ndims[n]): f"s{i}" for i, n in enumerate(shared_names)}
    data = {k: np.zeros((0,) * ndims[v.name], dtype=dtypes[v.name]) for v, k in keys.items()}
    rec = make_user_data(keys, data).dtype
    return rec, nw.record_slots(rec, list(keys.values()))


@dataclass(frozen=True)
class _Named:
    name: str
    ndim: int


def _sources(meta) -> tuple[str, str]:
    names = meta["shared"]
    rec, slots = _layout(names, meta["dtypes"], meta["ndims"])
    key_of = {n: f"s{i}" for i, n in enumerate(names)}
    dtypes = {key_of[n]: meta["dtypes"][n] for n in names}
    words = rec.itemsize // 8
    logp = nw.logp_source(
        meta["n_dim"], words, slots, [key_of[n] for n in meta["logp_args"]], dtypes
    )
    expand = nw.expand_source(
        meta["n_dim"],
        meta["n_expanded"],
        words,
        slots,
        [key_of[n] for n in meta["expand_args"]],
        dtypes,
    )
    return logp, expand


def _assemble(model, meta, logp_cf, expand_cf, shared: dict[str, SharedVariable], fns=(None, None)):
    """nutpie's CompiledPyMCModel around the callbacks, with *this* model's data and initial
    point."""
    # lazy: nutpie takes ~3 s to import; the PyMC backend and `check` never need it
    from nutpie.compile_pymc import (
        CompiledPyMCModel,
        _prepare_dims_and_coords,
        _rv_dict_to_flat_array_wrapper,
        _wrap_with_lock,
        make_user_data,
    )

    keys = {shared[n]: f"s{i}" for i, n in enumerate(meta["shared"])}
    data = {}
    for var, k in keys.items():
        arr = np.array(var.get_value(), dtype=meta["dtypes"][var.name], order="C", copy=True)
        arr.flags.writeable = False
        data[k] = arr
    names, slices, shapes = meta["shape_info"]
    shape_info = (list(names), [slice(a, b) for a, b in slices], [tuple(s) for s in shapes])
    ipf = _wrap_with_lock(
        make_initial_point_fn(  # as nutpie.compile_pymc_model does
            model=model,
            default_strategy="support_point",
            jitter_rvs=set(model.free_RVs),
            return_transformed=True,
        )
    )
    n_free = len(model.free_RVs)
    dims, coords = _prepare_dims_and_coords(model, shape_info, meta["reparameterized"])
    return CompiledPyMCModel(
        _n_dim=meta["n_dim"],
        dims=dims,
        _coords=coords,
        _shapes={n: tuple(s) for n, s in zip(names, shape_info[2])},
        compiled_logp_func=logp_cf,
        compiled_expand_func=expand_cf,
        initial_point_func=_rv_dict_to_flat_array_wrapper(
            ipf, names=shape_info[0][:n_free], shapes=shape_info[2][:n_free]
        ),
        shared_data=data,
        shared_var_keys=keys,
        user_data=make_user_data(keys, data),
        n_expanded=meta["n_expanded"],
        shape_info=shape_info,
        logp_func=fns[0],
        expand_func=fns[1],
        reparameterized_names=meta["reparameterized"],
    )


# ----------------------------------------------------------------------------- tiers


def _compile_fresh(model, key: str, cache_dir: Path | None, signer=None):
    from nutpie.compile_pymc import _make_functions  # lazy: nutpie takes ~3 s to import

    n_dim, n_exp, logp_pt, expand_pt, _, shape_info, reparam = _make_functions(
        model,
        mode="NUMBA",
        compute_grad=True,
        join_expanded=True,
        pymc_initial_point_fn=lambda s: {},
    )  # the initial point is made per model in _assemble
    logp_args = [v.name for v in logp_pt.get_shared()]
    expand_args = [v.name for v in expand_pt.get_shared()]
    shared_names = list(dict.fromkeys(logp_args + expand_args))
    by_name = {v.name: v for v in [*logp_pt.get_shared(), *expand_pt.get_shared()]}
    meta = {
        "key": key,
        "n_dim": int(n_dim),
        "n_expanded": int(n_exp),
        "reparameterized": list(reparam),
        "shape_info": [
            list(shape_info[0]),
            [[int(s.start), int(s.stop)] for s in shape_info[1]],
            [[int(d) for d in s] for s in shape_info[2]],
        ],
        "shared": shared_names,
        "logp_args": logp_args,
        "expand_args": expand_args,
        "dtypes": {n: str(by_name[n].type.dtype) for n in shared_names},
        "ndims": {n: int(by_name[n].type.ndim) for n in shared_names},
    }
    logp_src, expand_src = _sources(meta)
    disk = str(cache_dir / "numba") if cache_dir is not None else None
    miss = _on_miss(key, cache_dir) if cache_dir is not None else None
    logp_cf = nw.make_cfunc(
        logp_src, nw.LOGP_SIG, logp_pt.vm.jit_fn, disk, key + "logp", signer, miss
    )
    expand_cf = nw.make_cfunc(
        expand_src, nw.EXPAND_SIG, expand_pt.vm.jit_fn, disk, key + "expand", signer, miss
    )
    meta["disk_cacheable"] = nw.cacheable(logp_cf) and nw.cacheable(expand_cf)
    return meta, logp_cf, expand_cf, by_name, (logp_pt, expand_pt)


def _load_disk(key: str, cache_dir: Path, signer):
    """(meta, logp callback, expand callback) from disk, or None on a miss or an entry that is
    unreadable or fails verification (which the fresh compile then overwrites)."""
    try:
        return _read_entry(key, cache_dir, signer)
    except Exception as exc:  # noqa: BLE001 - a damaged entry is a miss, never a wrong model
        _miss(key, cache_dir, f"{type(exc).__name__}: {str(exc)[:120]}")
        return None


def _miss(key: str, cache_dir: Path, why: str) -> None:
    _warn_once(
        key,
        f"compile cache: entry {key[:12]} in {cache_dir} not used ({why}); "
        "compiling it again and rewriting it",
    )


class EntryMeta(_StrictModel):
    """The JSON layout of a cache entry, checked by type and range before anything is built
    from it (pydantic strict mode: no coercion, no extra keys)."""

    key: str = Field(pattern=r"^[0-9a-f]{64}$")
    disk_cacheable: bool
    n_dim: int = Field(ge=1, le=10**8)
    n_expanded: int = Field(ge=0, le=10**9)
    reparameterized: list[str]
    shape_info: tuple[list[str], list[tuple[int, int]], list[list[int]]]
    shared: list[str] = Field(max_length=10_000)
    logp_args: list[str]
    expand_args: list[str]
    dtypes: dict[str, str]
    ndims: dict[str, int]

    @model_validator(mode="after")
    def _consistent(self):
        names, slices, shapes = self.shape_info
        if not len(names) == len(slices) == len(shapes):
            raise ValueError("shape_info: lists of different lengths")
        for a, b in slices:
            if not 0 <= a <= b <= self.n_expanded:
                raise ValueError(f"shape_info: slice {a}:{b} outside 0..{self.n_expanded}")
        if any(d < 0 or d > 10**9 for s in shapes for d in s) or any(len(s) > 32 for s in shapes):
            raise ValueError("shape_info: shapes out of range")
        sh = set(self.shared)
        if len(sh) != len(self.shared) or not set(self.logp_args + self.expand_args) <= sh:
            raise ValueError("shared: names repeated or arguments not among them")
        if set(self.dtypes) != sh or set(self.ndims) != sh:
            raise ValueError("dtypes / ndims: not one per shared name")
        if any(d not in nw.DTYPES for d in self.dtypes.values()):
            raise ValueError("dtypes: not a numeric dtype")
        if any(not 0 <= n <= 32 for n in self.ndims.values()):
            raise ValueError("ndims: out of range")
        return self


def _read_entry(key: str, cache_dir: Path, signer):
    raw = signer.read(cache_dir / "meta" / f"{key}.json")
    if raw is None:
        return None
    meta = EntryMeta.model_validate_json(raw).model_dump(mode="json")
    if meta["key"] != key or not meta["disk_cacheable"]:
        raise ValueError("the entry is for another key or not cacheable")
    logp_src, expand_src = _sources(meta)
    disk, on_miss = str(cache_dir / "numba"), _on_miss(key, cache_dir)
    logp_cf = nw.make_cfunc(logp_src, nw.LOGP_SIG, None, disk, key + "logp", signer, on_miss)
    expand_cf = (
        nw.make_cfunc(expand_src, nw.EXPAND_SIG, None, disk, key + "expand", signer, on_miss)
        if logp_cf is not None
        else None
    )
    return (meta, logp_cf, expand_cf) if expand_cf is not None else None


def _on_miss(key: str, cache_dir: Path):
    return lambda why: _miss(key, cache_dir, why)


def _write_meta(meta: dict, cache_dir: Path, signer) -> None:
    signer.write(cache_dir / "meta" / f"{meta['key']}.json", json.dumps(meta).encode())


def compile_model(model, cache_dir: Path | str | None | bool = True):
    """(nutpie CompiledPyMCModel, CompileRecord). ``cache_dir``: True = :func:`default_cache_dir`,
    None/False = in-process reuse only, or a path."""
    t0 = time.perf_counter()
    if os.environ.get(COMPILER_ENV_VAR, "").lower() == "nutpie":
        return _fresh_uncached(model, t0)
    cache = default_cache_dir() if cache_dir is True else (Path(cache_dir) if cache_dir else None)
    key, shared = structure_key(model)
    if key is None:
        return _fresh_uncached(model, t0)
    with _LOCK:
        hit = _MEMO.get(key)
    if hit is not None and set(hit[0]["shared"]) <= set(shared):
        return _done(_assemble(model, *hit, shared), key, "memory", t0)
    if cache is not None:
        try:
            return _through_disk(model, key, shared, cache, t0)
        except (OSError, TimeoutError) as err:  # unwritable, untrusted or locked: compile
            _warn_once(
                f"dir:{cache}", f"compile cache {cache} not usable ({err}); compiling without it"
            )
    meta, lcf, ecf, by_name, fns = _compile_fresh(model, key, None)
    _MEMO[key] = (meta, lcf, ecf)
    return _done(_assemble(model, meta, lcf, ecf, {**by_name, **shared}, fns), key, "compiled", t0)


def is_cached(model, cache_dir: Path | str | None | bool = True) -> bool:
    """Whether :func:`compile_model` would find ``model`` without compiling it: in this process,
    or as a disk entry (its layout written; the object code is checked when it is loaded). A
    model that cannot be cached, or nutpie's own compilation, counts as not cached."""
    if os.environ.get(COMPILER_ENV_VAR, "").lower() == "nutpie":
        return False
    cache = default_cache_dir() if cache_dir is True else (Path(cache_dir) if cache_dir else None)
    key, _ = structure_key(model)
    if key is None:
        return False
    with _LOCK:
        if key in _MEMO:
            return True
    if cache is None:
        return False
    try:  # read as the run will: this user's tag, a trusted folder, no symlink followed
        raw = Signer(cache).read(cache / "meta" / f"{key}.json")
        meta = json.loads(raw) if raw is not None else {}
    except (OSError, ValueError):  # UntrustedCache is an OSError: the run compiles it anew
        return False
    return meta.get("key") == key and bool(meta.get("disk_cacheable"))


def _through_disk(model, key, shared, cache: Path, t0):
    for sub in ("meta", "numba", "locks", "tags"):
        make_private_dir(cache / sub)
        why = folder_problem(cache / sub, cache)
        if why:
            raise UntrustedCache(f"not trusted: {why}")
    signer = Signer(cache)
    with FileLock(str(cache / "locks" / f"{key}.lock"), timeout=900):
        loaded = _load_disk(key, cache, signer)
        if loaded is not None and set(loaded[0]["shared"]) <= set(shared):
            _MEMO[key] = loaded
            return _done(_assemble(model, *loaded, shared), key, "disk", t0)
        meta, lcf, ecf, by_name, fns = _compile_fresh(model, key, cache, signer)
        if meta["disk_cacheable"]:
            _write_meta(meta, cache, signer)
    _MEMO[key] = (meta, lcf, ecf)
    return _done(_assemble(model, meta, lcf, ecf, {**by_name, **shared}, fns), key, "compiled", t0)


def _fresh_uncached(model, t0):
    import nutpie  # lazy: nutpie takes ~3 s to import

    return _done(nutpie.compile_pymc_model(model, freeze_model=False), None, "uncached", t0)


def _done(compiled, key, source, t0):
    STATS[source] += 1
    return compiled, CompileRecord(key=key, source=source, seconds=time.perf_counter() - t0)


def clear_memory() -> None:
    """Forget the in-process tier (tests: force the disk or compile path)."""
    with _LOCK:
        _MEMO.clear()
