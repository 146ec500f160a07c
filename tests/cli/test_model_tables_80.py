"""``anefarm inspect`` and ``anefarm lint`` piped at 80 columns (``| cat``, ``COLUMNS=80``).

Before, nine (seven) columns shared 80 characters: op names read ``expand…``, shapes and
reasons one word a line. Now every line fits, nothing is cut, and every name, type,
reason and fix of ``--json`` can be found in the text.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import anefarm

MODELS = ["mobilenetv2_block.mlpackage", "attention_linear.mlpackage", "lstm.mlpackage"]


def _words(text: str) -> str:
    return " ".join(text.split())


def _fits(text: str, width: int = 80) -> None:
    too_long = [line for line in text.splitlines() if len(line) > width]
    assert not too_long, too_long
    assert "…" not in text  # nothing cut short


@pytest.mark.parametrize("model", MODELS)
def test_inspect_fits_80_columns_and_names_every_op_in_full(
    model: str, samples: dict[str, Path], tmp_path: Path
) -> None:
    out = anefarm("inspect", str(samples[model]), home=tmp_path, COLUMNS="80")
    assert out.returncode == 0, out.stderr
    _fits(out.stdout)
    ops = json.loads(anefarm("inspect", str(samples[model]), "--json", home=tmp_path,
                             COLUMNS="80").stdout)["ops"]  # fmt: skip
    assert ops
    lines = out.stdout.splitlines()
    for op in ops:
        # The op's row starts with its number and its whole name, then its type.
        row = next((line for line in lines if line.split()[:2] == [str(op["index"]), op["name"]]),
                   None)  # fmt: skip
        assert row is not None, (op["name"], out.stdout)
        assert op["type"] in row.split()
        for key, value in op["params"].items():
            if key != "weight_shape":  # a shape the weights column stands for
                assert f"{key}={value}".replace(", ", ",") in out.stdout, key


def test_inspect_on_a_wide_screen_keeps_one_column_per_fact(samples, tmp_path):
    out = anefarm("inspect", str(samples["conv10x10.mlpackage"]), home=tmp_path, COLUMNS="200")
    header = next(line for line in out.stdout.splitlines() if "params" in line)
    assert all(word in header for word in ("name", "type", "kind", "in", "out", "MFLOPs"))
    assert "[1, 3, 64, 64]" in out.stdout


def test_lint_fits_80_columns_with_every_reason_and_fix_readable(samples, tmp_path):
    path = str(samples["conv_sandwich_dilated.mlpackage"])
    out = anefarm("lint", path, home=tmp_path, COLUMNS="80")
    assert out.returncode == 3, out.stderr  # the exit code CI gates on is unchanged
    _fits(out.stdout)
    found = json.loads(anefarm("lint", path, "--json", home=tmp_path, COLUMNS="80").stdout)
    warnings = [f for f in found["findings"] if f["prediction"]]
    assert warnings
    text = _words(out.stdout)
    for f in warnings:
        assert f"{f['chip']} {f['op_name']} ({f['op_type']}) {f['rule_id']}" in text
        assert _words(f["reason"]) in text and _words(f["fix"]) in text
