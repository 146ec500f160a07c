"""The same model gives the same inventory in every process.

An op's arguments sit in a protobuf map whose iteration order changes from process to
process; the LSTM's FLOPs (read from its first input) used to be 1,024 in one run and
262,144 in the next. Three fresh interpreters must agree, byte for byte.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_inspect_json_is_the_same_in_every_process(samples: dict[str, Path]) -> None:
    model = samples["lstm.mlpackage"]
    outputs = {
        subprocess.run(
            [sys.executable, "-m", "orchestrator", "inspect", str(model), "--json"],
            capture_output=True,
            check=True,
            text=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1
    lstm = [op for op in json.loads(outputs.pop())["ops"] if op["type"] == "lstm"]
    assert [op["flops"] for op in lstm] == [262144]  # costed from x, its data input
