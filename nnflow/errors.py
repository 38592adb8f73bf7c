"""nnflow's exceptions: one class per exit code (docs/experiment-file.md lists them). Standard library only."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an experiment file, located as precisely as we can.

    `where` is `file:line:column` (or `--set KEY=VALUE` for an override),
    `path` the key path inside the file (`layers[2].Dense.units`).
    """

    message: str
    path: str = ""
    where: str = ""

    def __str__(self) -> str:
        head = " ".join(part for part in (self.where, self.path) if part)
        return f"{head}: {self.message}" if head else self.message


class NnflowError(Exception):
    """Base class of every error nnflow reports to a user (never a bug)."""

    exit_code = 1
    title = "error"


class ConfigError(NnflowError):
    """The command line or the experiment file is wrong (exit 2).

    Carries every problem found, so the user fixes them all in one pass.
    """

    exit_code = 2
    title = "invalid experiment"

    def __init__(self, problems: list[Problem] | Problem | str, source: str = ""):
        listed: list[Problem | str] = [problems] if isinstance(problems, (Problem, str)) else list(problems)
        self.problems = [p if isinstance(p, Problem) else Problem(p) for p in listed]
        self.source = source
        super().__init__(self.render())

    def render(self) -> str:
        count = len(self.problems)
        lines = [str(p) for p in self.problems]
        if count > 1:
            where = f" in {self.source}" if self.source else ""
            lines.insert(0, f"{count} problems{where}:")
            lines[1:] = ["  " + line for line in lines[1:]]
        return "\n".join(lines)


class DataError(NnflowError):
    """The data is wrong: missing file or column, bad values, wrong shape (exit 3)."""

    exit_code = 3
    title = "data error"


class TrainingError(NnflowError):
    """Training failed, for example the loss became NaN or infinite (exit 4)."""

    exit_code = 4
    title = "training failed"


class GateError(NnflowError):
    """An `expect:` gate did not hold (exit 5)."""

    exit_code = 5
    title = "expectation failed"


class UnsafeModelError(NnflowError):
    """A model or run file was refused as unsafe or damaged (exit 6)."""

    exit_code = 6
    title = "model refused"


class DamagedRunError(UnsafeModelError):
    """A file of a run folder (run.json, checkpoint.npz, history.csv, ...) is damaged (exit 6).

    The message names the file and what is wrong with it. A damaged file never changes
    the run's status: the run is left as it was.
    """

    title = "run file damaged"


class OutputError(NnflowError):
    """An output could not be written part-way (disk full, I/O error) (exit 7).

    Nothing is left half-written under the output's name; an output path that cannot be
    used at all (under a regular file, in a read-only folder) is a ConfigError (exit 2),
    raised before any work.
    """

    exit_code = 7
    title = "output not written"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised by nnflow's own handler where the process was (exit 143).

    A KeyboardInterrupt, so that every clean-up a Ctrl-C gets runs for it too: a run is
    marked interrupted and can be resumed, a half-written output is removed.
    """

    exit_code = 143


def error_for_exit_code(code: int) -> type[NnflowError]:
    """The error class of an exit code (the most specific one: 6 is DamagedRunError); NnflowError for others.

    Used to raise, in one process, the kind of error another process exited with.
    """
    found: type[NnflowError] = NnflowError
    pending = list(NnflowError.__subclasses__())
    while pending:
        kind = pending.pop(0)
        if kind.exit_code == code and kind.__module__ == __name__:  # not a module's own refinement
            found = kind  # breadth first: a subclass comes after its base
        pending.extend(kind.__subclasses__())
    return found


def interrupt_exit_code(interrupt: BaseException) -> int:
    """143 for SIGTERM (`Terminated`), 130 for Ctrl-C."""
    return Terminated.exit_code if isinstance(interrupt, Terminated) else 130
