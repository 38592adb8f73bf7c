"""The shape of the package: size limits, no import cycles, imports that point one way, a complete wheel.

Sizes and imports are read with `ast` from the source files, so these tests import nothing of nnflow.
Each test reports every violation in one message.
"""

from __future__ import annotations

import ast
import importlib.metadata
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "nnflow"

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_CLASS_LINES = 200

# Named exceptions to the size limits, each at its current size: it may shrink, never grow, and an
# entry that is no longer needed fails the test, so that this list only gets shorter.
# Keys: "nnflow/x.py" (module), "nnflow/x.py:Class" or "nnflow/x.py:function" / "nnflow/x.py:Class.method".
SIZE_EXCEPTIONS: dict[str, int] = {}

# Layers, from the top. A module may import modules of its own layer and of the layers below it, never above.
# The first matching prefix decides; a module that matches none is a library module.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("entry points", ("nnflow.__main__", "nnflow.cli")),  # and nnflow itself: its __init__ is the Python API
    ("workflows", ("nnflow.workflows",)),
    ("library", ()),
    ("spec", ("nnflow.spec", "nnflow.overrides", "nnflow.schema", "nnflow.catalog", "nnflow.yamlio", "nnflow.headers")),
    ("files", ("nnflow.fileio", "nnflow.table_files", "nnflow.run_layout")),
    ("errors", ("nnflow.errors", "nnflow.version")),  # standard library only: every layer may import them
]
LIBRARY = 2


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    deferred: bool  # inside a function: runs when the function is called, not when the module is imported

    def __str__(self) -> str:
        where = "in a function" if self.deferred else "at module level"
        return f"{self.importer} imports {self.imported} ({module_path(self.importer)}:{self.line}, {where})"


def source_files() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_path(name: str) -> str:
    path = ROOT.joinpath(*name.split("."))
    return str((path / "__init__.py" if path.is_dir() else path.with_suffix(".py")).relative_to(ROOT))


MODULES = {module_name(path): path for path in source_files()}


def layer_of(module: str) -> int:
    if module == "nnflow":  # the public API in nnflow/__init__.py; its prefix would match every module
        return 0
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            return index
    return LIBRARY


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.Module) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement, with whether it is deferred (inside a function); `if TYPE_CHECKING:` blocks never run."""

    def walk(nodes: list[ast.AST], deferred: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
        for node in nodes:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                yield node, deferred
            elif isinstance(node, ast.If) and _is_type_checking(node):
                yield from walk(list(node.orelse), deferred)
            else:
                inside_function = deferred or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                yield from walk(list(ast.iter_child_nodes(node)), inside_function)

    return walk(list(tree.body), False)


def _resolve(importer: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The nnflow modules an import statement loads (`from .x import y` is the submodule x.y when there is one)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            package = importer if MODULES[importer].name == "__init__.py" else importer.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{node.module}" if node.module else package
        else:
            base = node.module or ""
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
    found = []
    for name in names:
        while name and name not in MODULES:  # `import nnflow.spec.fields.X` -> the module that exists
            name = name.rpartition(".")[0]
        if name and name not in found and name != importer:
            found.append(name)
    return found


def nnflow_imports() -> list[Import]:
    imports = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, deferred in _import_nodes(tree):
            imports.extend(Import(module, imported, node.lineno, deferred) for imported in _resolve(module, node))
    return imports


def find_cycles(edges: list[Import]) -> list[list[str]]:
    """Each strongly connected group of modules that import each other (Tarjan), as a sorted list."""
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for edge in edges:
        graph[edge.importer].add(edge.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in sorted(graph[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(groups)


def shortest_cycles(group: list[str], edges: list[Import]) -> list[str]:
    """The shortest cycle through each module of a group, each told once: `a -> b (file:line) -> ... -> a`."""
    inside = {}
    for edge in edges:
        if edge.importer in group and edge.imported in group:
            inside.setdefault((edge.importer, edge.imported), edge)
    told: dict[frozenset[tuple[str, str]], str] = {}
    for start in group:
        previous: dict[str, str] = {}
        frontier = [start]
        while frontier and start not in previous:
            next_frontier = []
            for module in frontier:
                for importer, imported in inside:
                    if importer == module and imported not in previous:
                        previous[imported] = module
                        next_frontier.append(imported)
            frontier = next_frontier
        path = [start]
        while path[-1] != start or len(path) == 1:
            path.append(previous[path[-1]])
        steps = list(zip(path[:0:-1], path[-2::-1]))
        key = frozenset(steps)
        if key not in told:
            text = steps[0][0]
            for importer, imported in steps:
                edge = inside[(importer, imported)]
                later = ", in a function" if edge.deferred else ""
                text += f" -> {imported} ({module_path(importer)}:{edge.line}{later})"
            told[key] = text
    return sorted(told.values(), key=len)


def describe_cycle(group: list[str], edges: list[Import]) -> str:
    return f"{len(group)} modules ({', '.join(group)}), through:\n      " + "\n      ".join(
        shortest_cycles(group, edges)
    )


def report(title: str, violations: list[str]) -> str:
    return f"{len(violations)} {title}:\n  " + "\n  ".join(violations)


# -- sizes ----------------------------------------------------------------------


def measured_sizes() -> dict[str, tuple[int, int]]:
    """Every module, class and function of nnflow/, with its length in lines and its limit."""
    sizes: dict[str, tuple[int, int]] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                limit = MAX_CLASS_LINES if isinstance(child, ast.ClassDef) else MAX_FUNCTION_LINES
                assert child.end_lineno is not None
                sizes[f"{prefix}{child.name}"] = (child.end_lineno - child.lineno + 1, limit)
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    for path in source_files():
        relative = str(path.relative_to(ROOT))
        text = path.read_text(encoding="utf-8")
        sizes[relative] = (len(text.splitlines()), MAX_MODULE_LINES)
        visit(ast.parse(text, filename=str(path)), f"{relative}:")
    return sizes


def test_no_module_function_or_class_over_its_size_limit():
    violations = []
    for name, (lines, limit) in measured_sizes().items():
        allowed = SIZE_EXCEPTIONS.get(name, limit)
        if lines > allowed:
            kind = "module" if ":" not in name else "function or class"
            extra = f" (its named exception allows {allowed})" if name in SIZE_EXCEPTIONS else ""
            violations.append(f"{name}: {lines} lines, over the {limit}-line limit for a {kind}{extra}")
    assert not violations, report(
        f"over the size limits (module {MAX_MODULE_LINES}, function {MAX_FUNCTION_LINES}, class {MAX_CLASS_LINES} lines); "
        "split by concern",
        violations,
    )


def test_size_exceptions_are_still_needed():
    sizes = measured_sizes()
    stale = [
        f"{name}: allowed {allowed}, now {sizes[name][0] if name in sizes else 'gone'}"
        for name, allowed in SIZE_EXCEPTIONS.items()
        if name not in sizes or sizes[name][0] <= sizes[name][1] or sizes[name][0] < allowed
    ]
    assert not stale, report("entries of SIZE_EXCEPTIONS to remove or lower to the current size", stale)


# -- imports ----------------------------------------------------------------------

# Module-level and deferred imports are checked separately. A cycle of module-level imports is a bug
# waiting for an import order (a partly initialised module); it must not exist. A deferred import
# (inside a function) is how nnflow keeps TensorFlow out of `nnflow --help` and `nnflow check`: it
# cannot fail at import time, but a cycle through it still means two modules that need each other,
# so the whole graph must be free of cycles too. Layering applies to both: a deferred import upward
# is the same dependency, only later.


def test_no_import_cycle_at_module_level():
    edges = [edge for edge in nnflow_imports() if not edge.deferred]
    cycles = find_cycles(edges)
    assert not cycles, report("import cycles at module level", [describe_cycle(group, edges) for group in cycles])


def test_no_import_cycle_counting_deferred_imports():
    edges = nnflow_imports()
    cycles = find_cycles(edges)
    assert not cycles, report(
        "import cycles (module-level and deferred imports together)", [describe_cycle(group, edges) for group in cycles]
    )


def test_imports_point_down_the_layers():
    """cli -> workflows -> library modules -> spec -> fileio -> errors: an import never points up."""
    violations = []
    for edge in nnflow_imports():
        importer, imported = layer_of(edge.importer), layer_of(edge.imported)
        if imported < importer:
            violations.append(f"{edge}: {LAYERS[importer][0]} may not import {LAYERS[imported][0]}")
    assert not violations, report("imports that point up the layers " + " -> ".join(n for n, _ in LAYERS), violations)


def test_nothing_imports_the_command_line():
    violations = [
        str(edge)
        for edge in nnflow_imports()
        if (edge.imported == "nnflow.cli" or edge.imported.startswith("nnflow.cli."))
        and edge.importer != "nnflow.__main__"
        and not edge.importer.startswith("nnflow.cli")
    ]
    assert not violations, report("imports of the command line (only nnflow/__main__.py may)", violations)


def test_errors_and_version_import_nothing_of_nnflow():
    violations = [str(edge) for edge in nnflow_imports() if layer_of(edge.importer) == len(LAYERS) - 1]
    assert not violations, report(
        "imports of nnflow in nnflow/errors.py or nnflow/version.py (standard library only)", violations
    )


# -- the wheel ----------------------------------------------------------------------


def _setuptools_can_build_offline() -> bool:
    """pyproject.toml's `license = "..."` needs setuptools 77; with it installed, build without isolation."""
    try:
        major = int(importlib.metadata.version("setuptools").split(".")[0])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return False
    return major >= 77


@pytest.mark.slow
def test_built_wheel_holds_every_subpackage_and_the_catalog(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(PACKAGE, source / "nnflow", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels = tmp_path / "wheels"
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(source)]
    if _setuptools_can_build_offline():
        command.insert(4, "--no-build-isolation")
    built = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, f"{' '.join(command)} failed:\n{built.stdout}\n{built.stderr}"
    (wheel,) = wheels.glob("nnflow-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())

    in_wheel = {name.rpartition("/")[0] for name in names if name.endswith("/__init__.py")}
    in_source = {
        str(init.parent.relative_to(ROOT)) for init in PACKAGE.rglob("__init__.py") if "__pycache__" not in init.parts
    }
    assert in_source - in_wheel == set(), f"packages missing from {wheel.name}: {sorted(in_source - in_wheel)}"
    modules = {str(path.relative_to(ROOT)) for path in source_files()}
    assert modules - names == set(), f"modules missing from {wheel.name}: {sorted(modules - names)}"
    data = {str(path.relative_to(ROOT)) for path in PACKAGE.rglob("*.json")}
    assert data and data - names == set(), f"package data missing from {wheel.name}: {sorted(data - names)}"
    strays = sorted(name for name in names if "__pycache__" in name or name.startswith(("tests/", "benchmarks/")))
    assert not strays, f"{wheel.name} holds files that are not nnflow's: {strays}"
