"""``pydantic_core.to_jsonable_python(params, fallback=str)`` gives what dispatch's hand-written
``_jsonable`` gives for op params (issue 16): a sample model's params are plain JSON already,
and the odd values ``_jsonable`` handles come out the same (tuples as lists, keys as strings,
anything else as its ``str``). So dispatch may switch without changing a stored row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic_core import to_jsonable_python

from orchestrator import modelkit


def jsonable(value: Any) -> Any:
    return to_jsonable_python(value, fallback=str)


def test_every_sample_models_params_are_unchanged(samples: dict[str, Path]) -> None:
    ops = 0
    for path in samples.values():
        for op in modelkit.inspect_model(path).ops:
            ops += 1
            assert json.dumps(jsonable(op.params)) == json.dumps(op.params), (path.name, op.name)
    assert ops > 50


class Opaque:
    def __str__(self) -> str:
        return "opaque"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"pad": (1, 1), 3: None}, {"pad": [1, 1], "3": None}),
        ([{"k": [(2, 3)]}], [{"k": [[2, 3]]}]),
        ({"x": np.int64(3), "y": np.float32(0.5)}, {"x": "3", "y": "0.5"}),
        ({"o": Opaque(), "b": True, "f": 0.25, "s": "same"},
         {"o": "opaque", "b": True, "f": 0.25, "s": "same"}),
    ],
)  # fmt: skip
def test_odd_values_come_out_as_dispatch_stored_them(value: Any, expected: Any) -> None:
    assert jsonable(value) == expected
    assert json.dumps(jsonable(value)) == json.dumps(expected)
