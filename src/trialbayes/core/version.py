"""The installed version of trialbayes (one place: the package, the CLI and provenance)."""

from __future__ import annotations

from importlib import metadata


def package_version() -> str:
    """The installed distribution's version ("0+unknown" in a source tree not installed)."""
    try:
        return metadata.version("trialbayes")
    except metadata.PackageNotFoundError:
        return "0+unknown"
