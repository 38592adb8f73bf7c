"""The `nnflow` command: parse, call one workflow, print. The only package that prints or exits.

Imports nothing heavy at module level: `nnflow --help` and `nnflow check` never load
TensorFlow, Keras or pandas.

- group.py: the click group, the shared options, JSON documents, and exit codes in one place;
  `main` (the console script) and `run` (a command line to its exit code).
- experiment_commands.py: check, compile, train (fit), sweep.
- run_commands.py: evaluate, predict, plot, report, export, runs, compare, schema.
- tracking_commands.py: log (run folders copied into MLflow).
- serve_command.py: serve (a trained run behind HTTP).
"""

from __future__ import annotations

from . import experiment_commands, run_commands, serve_command, tracking_commands  # noqa: F401  (each registers its commands on `cli`)
from .group import JSON_FORMAT, cli, emit_json, main, run, sigterm_raises

__all__ = ["JSON_FORMAT", "cli", "emit_json", "main", "run", "sigterm_raises"]
