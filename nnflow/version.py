"""nnflow's version: one place, standard library only (every layer may read it)."""

__version__ = "0.1.0"
