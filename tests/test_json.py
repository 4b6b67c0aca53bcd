"""Every JSON file the project writes is strict JSON: NaN and infinity are refused, naming where they are."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest

from fe_adapter._json import to_json, write_json

REPOSITORY = Path(__file__).resolve().parents[1]


def test_json_refuses_nan_and_infinity_and_names_where_they_are(tmp_path):
    with pytest.raises(ValueError, match=r"best.metrics.per_class_recall.fear is nan, which JSON cannot hold"):
        to_json({"best": {"metrics": {"uar": 0.5, "per_class_recall": {"happy": 1.0, "fear": math.nan}}}})
    with pytest.raises(ValueError, match=r"history\[1\].loss is inf"):
        write_json(tmp_path / "x.json", {"history": [{"loss": 1.0}, {"loss": math.inf}]})
    assert write_json(tmp_path / "y.json", {"uar": 0.5, "absent": None}).read_text() == \
        '{\n  "uar": 0.5,\n  "absent": null\n}\n'


def test_every_json_the_project_writes_refuses_nan():
    """Each json.dump(s) call in the package, the benchmarks and the scripts passes allow_nan=False (most go
    through fe_adapter._json), so no NaN can reach a file that strict parsers would then reject."""
    lenient = []
    for folder in ("fe_adapter", "benchmarks", "scripts"):
        for path in sorted((REPOSITORY / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                        node.func.attr in ("dump", "dumps") and getattr(node.func.value, "id", None) == "json":
                    strict = any(keyword.arg == "allow_nan" and getattr(keyword.value, "value", True) is False
                                 for keyword in node.keywords)
                    if not strict:
                        lenient.append(f"{path.relative_to(REPOSITORY)}:{node.lineno}")
    assert lenient == []
