"""``python -m trialbayes``: the command line (same as the ``trialbayes`` script)."""

from .cli import main

main()
