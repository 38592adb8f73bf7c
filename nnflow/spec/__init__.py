"""The experiment file: YAML -> a validated, frozen `Spec`. Never imports TensorFlow.

Validation happens once, here. Every problem in the file is collected, located
(`file:line:col layers[2].Dense.units`) and reported together; everything after
this package works on a spec known to be valid.

Where things are:
    load.py             load_spec, spec_from_text: file -> overrides -> checks -> Spec
    experiment_file.py  the top-level keys and the order the sections are checked in
    data.py, layers.py, compile.py, fit.py, expect.py   one module per section
    fields.py           how a section declares its fields (check, default, description)
    problems.py         the problem collector, the limits, the checks of plain values
    keras_objects.py    Keras names and arguments, against the catalog (keras_schema.py: their JSON Schema)
    cross.py            checks across sections (gates and monitors name reported metrics)
    experiment.py       the frozen dataclasses: Spec, DataSpec, CompileSpec, FitSpec, KerasObject
    sweep.py            the `sweep:` section's frozen dataclasses (SweepSpec, its dimensions), set_text
    sweep_section.py, sweep_space.py, sweep_methods.py   its keys; its space, each candidate checked
                        as `--set`; the samplers and pruners with their arguments (no Optuna import)
"""

from __future__ import annotations

from ..yamlio import render_path
from .callback_checks import CALLBACK_PATH_ARGUMENTS, path_escape
from .compile import COMPILE
from .data import DATA
from .expect import GATE_PATTERN, Gate, GateResult, check_gates
from .experiment import SPLIT_PREFIXES, CompileSpec, DataSpec, FitSpec, KerasObject, Spec, reported_metric_names
from .experiment_file import EXPERIMENT, SECTIONS
from .fields import REQUIRED, Field, Section
from .fit import DIAGNOSTICS, DISTRIBUTE_MODES, FIT
from .load import check_candidate, load_spec, spec_from_document, spec_from_text
from .problems import MAX_COUNT, MAX_INT64, MAX_JOIN_TIMEOUT, MAX_NAME_LENGTH, MAX_SEED
from .sweep import (
    DEFAULT_TRIALS,
    MAX_GRID_POINTS,
    PRUNERS,
    SAMPLERS,
    Choice,
    Dimension,
    FloatRange,
    IntRange,
    Method,
    SweepSpec,
    flow_text,
    set_text,
)
from .sweep_section import SWEEP

DATA_KEYS = DATA.keys
COMPILE_KEYS = COMPILE.keys
FIT_KEYS = FIT.keys
SWEEP_KEYS = SWEEP.keys
DIAGNOSTICS_KEYS = DIAGNOSTICS.keys
DEFAULTS = {
    "seed": EXPERIMENT.field("seed").default,
    "data": DATA.defaults,
    "compile": COMPILE.defaults,
    "fit": FIT.defaults,
}

__all__ = [
    "DEFAULT_TRIALS",
    "CALLBACK_PATH_ARGUMENTS",
    "COMPILE",
    "COMPILE_KEYS",
    "DATA",
    "DATA_KEYS",
    "DEFAULTS",
    "DIAGNOSTICS",
    "DIAGNOSTICS_KEYS",
    "DISTRIBUTE_MODES",
    "EXPERIMENT",
    "FIT",
    "FIT_KEYS",
    "GATE_PATTERN",
    "MAX_COUNT",
    "MAX_GRID_POINTS",
    "MAX_INT64",
    "MAX_JOIN_TIMEOUT",
    "MAX_NAME_LENGTH",
    "MAX_SEED",
    "PRUNERS",
    "REQUIRED",
    "SAMPLERS",
    "SECTIONS",
    "SPLIT_PREFIXES",
    "SWEEP",
    "SWEEP_KEYS",
    "Choice",
    "CompileSpec",
    "DataSpec",
    "Dimension",
    "Field",
    "FitSpec",
    "FloatRange",
    "Gate",
    "GateResult",
    "IntRange",
    "KerasObject",
    "Method",
    "Section",
    "Spec",
    "SweepSpec",
    "check_candidate",
    "check_gates",
    "flow_text",
    "load_spec",
    "path_escape",
    "render_path",
    "reported_metric_names",
    "set_text",
    "spec_from_document",
    "spec_from_text",
]
