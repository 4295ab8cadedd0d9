"""Rendering a run's typed results: CSV tables, figures with captions, report.md, the
self-contained report.html, and the one writer of every route (atomic output folder)."""

from .writer import RunResult, render_reports, write_run

__all__ = ["RunResult", "render_reports", "write_run"]
