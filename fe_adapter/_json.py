"""JSON that every parser accepts: NaN and infinity are refused, with the place that holds one named.

Python's ``json`` writes ``NaN`` and ``Infinity`` by default, which is not JSON: strict parsers (browsers, ``jq``,
most languages) reject the whole file. Everything the project writes as JSON goes through ``to_json``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def to_json(value: Any, indent: int | None = 2, sort_keys: bool = False) -> str:
    """``json.dumps(value, allow_nan=False)``; a NaN or infinite number raises ValueError naming where it is
    (e.g. ``best.metrics.per_class_recall.fear``)."""
    try:
        return json.dumps(value, indent=indent, sort_keys=sort_keys, allow_nan=False)
    except ValueError:
        found = next(_non_finite(value, ""), None)
        if found is None:
            raise
        where, number = found
        raise ValueError(f"{where or 'the value'} is {number}, which JSON cannot hold (only finite numbers): write "
                         "null for a missing number") from None


def write_json(path: str | Path, value: Any) -> Path:
    """Write ``to_json(value)`` and a final newline to ``path``."""
    path = Path(path)
    path.write_text(to_json(value) + "\n")
    return path


def _non_finite(value: Any, where: str) -> Iterator[tuple[str, float]]:
    """(path, number) of each NaN or infinite float in nested dicts, lists and tuples."""
    if isinstance(value, float) and not math.isfinite(value):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _non_finite(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _non_finite(item, f"{where}[{index}]")
