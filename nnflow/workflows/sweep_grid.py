"""`--grid KEY=V1,V2,...`: the values of a grid sweep, as the texts the user gave."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ..errors import ConfigError, Problem


def parse_grid(grids: Iterable[str]) -> dict[str, list[str]]:
    """`KEY=V1,V2,...` (commas inside [] {} or quotes do not split) -> {KEY: [V1, V2, ...]}."""
    parsed: dict[str, list[str]] = {}
    for text in grids:
        key, sep, values = text.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise ConfigError(
                Problem(
                    f"expected KEY=V1,V2,... (e.g. fit.batch_size=16,32); received {text!r}.", where=f"--grid {text}"
                )
            )
        if key in parsed:
            raise ConfigError(
                Problem(f"{key} is given twice; put all its values in one --grid.", where=f"--grid {text}")
            )
        parsed[key] = _split_values(values)
        if not parsed[key]:
            raise ConfigError(Problem(f"no values for {key}; give at least one: {key}=V1,V2.", where=f"--grid {text}"))
        if len(set(parsed[key])) != len(parsed[key]):
            raise ConfigError(Problem(f"a value of {key} is given twice.", where=f"--grid {text}"))
    if not parsed:
        raise ConfigError(Problem("a sweep needs at least one --grid KEY=V1,V2,...", where="--grid"))
    return parsed


def _split_values(text: str) -> list[str]:
    values, depth, quote, current = [], 0, "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            values.append(current.strip())
            current = ""
            continue
        current += char
    values.append(current.strip())
    return [value for value in values if value != ""]


def slug(texts: Mapping[str, str]) -> str:
    """A folder name for a trial's values: `units=8_learning_rate=0.01`."""
    from ..render import value_text

    text = "_".join(f"{key.split('.')[-1]}={value_text(value)}" for key, value in texts.items())
    return re.sub(r"[^A-Za-z0-9._=-]+", "-", text)[:80].strip("-") or "trial"
