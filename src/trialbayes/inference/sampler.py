"""Sampling (nutpie by default, PyMC's own NUTS selectable) and the diagnostics gate.

Compilation is separated from sampling: a :class:`SamplerRunner` compiles a model once and samples
it again with new ``pm.Data`` values (new data of the same shape, or another prior scenario) without
recompiling. ``compile_count`` records how often it compiled. With nutpie the compiled model
comes from :mod:`compile_cache`: a model whose structure was compiled before, in this process or
(through the disk cache) in another one, is not compiled again (``compile_source`` says which).
"""

from __future__ import annotations

import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata

import arviz_stats as azs
import numpy as np
import pymc as pm
import xarray as xr
from threadpoolctl import ThreadpoolController

from ..config.schema import Diagnostics, SamplerSpec
from ..core.interrupts import check_complete, phase
from ..core.progress import sampler_bar
from ..results.sections import GateResult, GateThresholds
from .compile_cache import compile_model, configured_cache_dir
from .raw_draws import DEFAULT_STATS, RawDraws, arrow_draws

_BLAS: list = []  # the process's threadpool controller, made once (it scans the loaded libraries)


def one_blas_thread():
    """A context with one BLAS thread: the chains already run in parallel, and nested BLAS
    threads oversubscribe the cores (measured 4x slower at N = 100 000 on 2 cores)."""
    if not _BLAS:
        _BLAS.append(ThreadpoolController())
    return _BLAS[0].limit(limits=1, user_api="blas")


def stack_versions() -> dict[str, str]:
    """Versions of Python and the numerical stack, for provenance ("not installed" if absent)."""
    out = {"python": platform.python_version()}
    for pkg in (
        "trialbayes",
        "pymc",
        "pytensor",
        "nutpie",
        "arviz",
        "arviz-stats",
        "numpy",
        "scipy",
        "pandas",
        "xarray",
        "lifelines",
    ):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def show_progress(setting: str) -> bool:
    """Whether the sampler shows its progress bar under ``sampler.progress`` (``auto``: on a
    terminal, not in CI)."""
    if setting == "on":
        return True
    if setting == "off":
        return False
    return sys.stderr.isatty() and os.environ.get("CI", "").lower() not in ("1", "true", "yes")


@dataclass
class SamplerRunner:
    """Compile once, sample many times. ``backend`` is 'nutpie' or 'pymc'."""

    model: pm.Model
    config: SamplerSpec
    target_accept: float = 0.9  # used when the config leaves it to the model
    compiled: object = None
    compile_count: int = 0
    compile_seconds: float = 0.0
    compile_source: str | None = None  # 'memory', 'disk', 'compiled' or 'uncached' (compile_cache)
    timings: list = field(default_factory=list)
    current_data: dict = field(default_factory=dict)  # every pm.Data value changed since compiling
    label: str = "model"  # named by the terminal progress bar

    @property
    def accept(self) -> float:
        return self.config.target_accept or self.target_accept

    def compile(self):
        if self.config.backend == "nutpie" and self.compiled is None:
            cache = configured_cache_dir(self.config.cache_dir)
            self.compiled, record = compile_model(self.model, cache_dir=cache)
            self.compile_seconds += record.seconds
            self.compile_source = record.source
            self.compile_count += 1
        return self

    @property
    def sample_seconds(self) -> float:
        return float(sum(self.timings))

    def timing_summary(self) -> dict:
        """Seconds spent compiling and sampling (incl. log-likelihood), and where the compiled
        model came from: for results provenance and progress lines."""
        return {
            "compile_s": round(self.compile_seconds, 2),
            "sample_s": round(self.sample_seconds, 2),
            "compiled_from": self.compile_source,
        }

    def sample(
        self,
        data: dict | None = None,
        seed: int | None = None,
        log_likelihood: bool | Callable = True,
    ):
        """Draw from the posterior, with ``data`` (pm.Data name -> value) set first if given.

        ``log_likelihood``: True computes the pointwise log-likelihood with PyMC; a callable
        ``f(idata) -> xarray.Dataset`` supplies it instead (faster, no compilation); False skips
        it."""
        cfg = self.config
        seed = cfg.seed if seed is None else seed
        with phase("compiling"):
            self.compile()  # timed on its own (compile_seconds); no-op once compiled / PyMC NUTS
        t0 = time.perf_counter()
        if data:
            self.current_data.update(data)
            pm.set_data(
                data, model=self.model
            )  # keep the PyMC model in step (log-likelihood, log-prior)
        with one_blas_thread(), phase("sampling"):
            idata = self._draw(cfg, seed)
        check_complete(idata, cfg.chains, cfg.draws, free_var_names(self.model))
        if callable(log_likelihood):
            idata["log_likelihood"] = xr.DataTree(log_likelihood(idata))
        elif log_likelihood:
            pm.compute_log_likelihood(
                idata, model=self.model, extend_inferencedata=True, progressbar=False
            )
        self.timings.append(time.perf_counter() - t0)
        idata.attrs["sampler"] = f"NUTS via {cfg.backend}"
        return idata

    def sample_draws(
        self,
        names,
        data: dict | None = None,
        seed: int | None = None,
        stats=DEFAULT_STATS,
    ) -> RawDraws:
        """Like :meth:`sample`, for jobs that refit many times and read a few variables: the
        post-warm-up draws of ``names`` (those the model has) and the sampler ``stats`` as
        arrays (:class:`~.raw_draws.RawDraws`), without building the ArviZ DataTree of every
        variable; no log-likelihood. Timed in ``timings`` like :meth:`sample`."""
        cfg = self.config
        seed = cfg.seed if seed is None else seed
        with phase("compiling"):
            self.compile()
        t0 = time.perf_counter()
        if data:
            self.current_data.update(data)
            pm.set_data(data, model=self.model)
        with one_blas_thread(), phase("sampling"):
            if cfg.backend == "nutpie":
                trace = self._draw(cfg, seed, raw=True)
                out = arrow_draws(trace, names, stats, cfg.chains, cfg.draws)
            else:
                idata = self._draw(cfg, seed)
                check_complete(idata, cfg.chains, cfg.draws, free_var_names(self.model))
                post, st = idata.posterior, idata.sample_stats
                out = RawDraws(
                    {n: np.asarray(post[n]) for n in names if n in post},
                    {n: np.asarray(st[n]) for n in stats},
                )
        self.timings.append(time.perf_counter() - t0)
        return out

    def _draw(self, cfg, seed, raw: bool = False):
        if cfg.backend == "nutpie":
            import nutpie  # lazy: ~3 s to import; only the nutpie backend needs it

            compiled = (
                self.compiled.with_data(**self.current_data) if self.current_data else self.compiled
            )
            # non-blocking, so that an interruption is not turned into a partial trace (nutpie's
            # blocking call returns the draws so far on KeyboardInterrupt); with a terminal, a
            # one-line bar that names the model (progress.sampler_bar) instead of nutpie's own
            bar = (
                {"progress_callback": sampler_bar(f"sampling {self.label}")}
                if show_progress(cfg.progress)
                else {}
            )
            run = nutpie.sample(
                compiled,
                draws=cfg.draws,
                tune=cfg.tune,
                chains=cfg.chains,
                seed=seed,
                target_accept=self.accept,
                progress_bar=False,
                save_warmup=False,
                blocking=False,
                return_raw_trace=raw,
                **bar,
            )
            try:
                return run.wait()
            except BaseException:
                run.cancel()
                raise
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pm.sample(
                draws=cfg.draws,
                tune=cfg.tune,
                chains=cfg.chains,
                cores=min(cfg.chains, os.cpu_count() or 1),
                random_seed=seed,
                target_accept=self.accept,
                nuts_sampler="pymc",
                progressbar=show_progress(cfg.progress),
                compute_convergence_checks=False,
                model=self.model,
            )


def free_var_names(model: pm.Model) -> list[str]:
    """Names of the model's free random variables (the sampled parameters)."""
    return [v.name for v in model.free_RVs]


def _max(da) -> float:
    vals = (
        [float(v.max()) for v in da.data_vars.values()]
        if isinstance(da, xr.Dataset)
        else [float(da.max())]
    )
    return float(np.nanmax(vals)) if not np.isnan(vals).all() else float("nan")


def _min(da) -> float:
    vals = (
        [float(v.min()) for v in da.data_vars.values()]
        if isinstance(da, xr.Dataset)
        else [float(da.min())]
    )
    return float(np.nanmin(vals)) if not np.isnan(vals).all() else float("nan")


def diagnose(idata, var_names: list[str], gate: Diagnostics) -> GateResult:
    """Apply the gate: R-hat, bulk and tail ESS, divergences, E-BFMI. Never hides a failure."""
    post = idata.posterior.to_dataset()[var_names]
    chains = post.sizes["chain"]
    rhat = _max(azs.rhat(post)) if chains >= 2 else None  # R-hat compares chains
    ess_b = _min(azs.ess(post, method="bulk"))
    ess_t = _min(azs.ess(post, method="tail"))
    div = int(idata.sample_stats["diverging"].sum())
    bfmi = float(np.atleast_1d(np.asarray(azs.bfmi(idata).to_dataset()["energy"])).min())
    fails = []
    if rhat is None:
        fails.append("R-hat undefined with 1 chain (run 2 or more)")
    elif not rhat <= gate.rhat_max:
        fails.append(f"R-hat {rhat:.3f} > {gate.rhat_max}")
    if not ess_b >= gate.ess_bulk_min:
        fails.append(f"bulk ESS {ess_b:.0f} < {gate.ess_bulk_min:g}")
    if not ess_t >= gate.ess_tail_min:
        fails.append(f"tail ESS {ess_t:.0f} < {gate.ess_tail_min:g}")
    if div > gate.max_divergences:
        fails.append(f"{div} divergent transitions (allowed {gate.max_divergences})")
    if not bfmi >= gate.bfmi_min:
        fails.append(f"E-BFMI {bfmi:.2f} < {gate.bfmi_min}")
    return GateResult(
        rhat_max=rhat,
        ess_bulk_min=ess_b,
        ess_tail_min=ess_t,
        divergences=div,
        bfmi_min=bfmi,
        n_draws=int(chains * post.sizes["draw"]),
        thresholds=GateThresholds(**gate.model_dump(exclude={"allow_unreliable"})),
        failures=fails,
        reliable=not fails,
    )
