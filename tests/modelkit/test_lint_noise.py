"""Lint that earns its exit code: chip names as the catalog spells them (commas, close
matches), layout transposes graded as notes, and JSON that agrees with its findings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from orchestrator import catalog
from orchestrator.errors import UsageError
from orchestrator.modelkit import LintFinding, inspect_model
from orchestrator.modelkit.rules import CONFIDENCES, NOTE, lint
from orchestrator.verdict.lint import LintBook
from tests.modelkit.conftest import run_cli


def test_chips_take_commas_repeats_and_spellings_of_catalog_names():
    assert [c.name for c in catalog.chips("A12,A14")] == ["A12", "A14"]
    assert [c.name for c in catalog.chips(["a12", " A14 , A12", "A17pro"])] == [
        "A12", "A14", "A17 Pro"]  # fmt: skip
    assert catalog.chip("a17-Pro").name == "A17 Pro"


@pytest.mark.parametrize(("typed", "suggested"), [("A17", "A17 Pro"), ("A18P", "A18 Pro")])
def test_a_name_the_catalog_extends_is_suggested_first(typed, suggested):
    with pytest.raises(UsageError) as info:
        catalog.chips(f"A12,{typed}")
    assert info.value.hint is not None
    assert info.value.hint.startswith(f"did you mean {suggested}")
    with pytest.raises(UsageError) as selected:
        catalog.select(typed)
    assert suggested in selected.value.one_line()


@pytest.mark.parametrize("bad", ["A99", "", " , ", "A12,,Z80"])
def test_unknown_or_missing_chips_are_usage_errors(bad):
    with pytest.raises(UsageError) as info:
        catalog.chips(bad)
    assert info.value.hint


def _program(tmp: Path, name: str, build: Any, shape: tuple[int, ...], fp32: bool = False) -> Path:
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    program = mb.program(input_specs=[mb.TensorSpec(shape=shape)])(build)
    precision = ct.precision.FLOAT32 if fp32 else ct.precision.FLOAT16
    model = ct.convert(program, convert_to="mlprogram", compute_precision=precision,
                       minimum_deployment_target=ct.target.iOS16)  # fmt: skip
    path = tmp / f"{name}.mlpackage"
    model.save(str(path))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """What a TensorFlow conversion looks like: NHWC in, a transpose to NCHW, convolutions;
    and the same with transposes inside the network, which A12 reports do concern."""
    from coremltools.converters.mil import Builder as mb

    tmp = tmp_path_factory.mktemp("noise")
    w = np.ones((4, 3, 3, 3), dtype=np.float32)
    nhwc = (1, 16, 16, 3)

    def tf_style(x: Any) -> Any:
        return mb.relu(x=mb.conv(x=mb.transpose(x=x, perm=[0, 3, 1, 2]), weight=w))

    def middle(x: Any) -> Any:
        y = mb.conv(x=mb.transpose(x=x, perm=[0, 3, 1, 2]), weight=w)
        # A layout permutation, but inside the network; reshapes keep coremltools from
        # cancelling the transposes against each other.
        y = mb.reshape(x=mb.transpose(x=y, perm=[0, 2, 3, 1]), shape=(1, 196, 4))
        y = mb.transpose(x=mb.softmax(x=y, axis=-1), perm=[0, 2, 1])
        return mb.relu(x=mb.reshape(x=y, shape=(1, 4, 14, 14)))

    def nhwc_out(x: Any) -> Any:
        return mb.transpose(x=mb.conv(x=x, weight=w), perm=[0, 2, 3, 1])

    def swap_hw(x: Any) -> Any:  # at the input, but not a layout change
        return mb.conv(x=mb.transpose(x=x, perm=[0, 1, 3, 2]), weight=w)

    return {
        "tf_style": _program(tmp, "tf_style", tf_style, nhwc),
        "tf_style_fp32": _program(tmp, "tf_style_fp32", tf_style, nhwc, fp32=True),
        "middle": _program(tmp, "middle", middle, nhwc),
        "nhwc_out": _program(tmp, "nhwc_out", nhwc_out, (1, 3, 16, 16)),
        "swap_hw": _program(tmp, "swap_hw", swap_hw, (1, 3, 16, 16)),
    }


def _ids(path: Path, chip: str = "A12") -> list[tuple[str, str]]:
    found = lint(inspect_model(path), [chip], notes=True)
    return [(f.rule_id, f.severity) for f in found if f.rule_id != "float32-precision"]


@pytest.mark.parametrize("name", ["tf_style", "tf_style_fp32", "nhwc_out"])
def test_a_layout_transpose_at_the_edge_is_a_note_only(models, name):
    assert _ids(models[name]) == [("transpose-a12-layout", NOTE)]
    stored = lint(inspect_model(models[name]), ["A12"])  # what the farm stores
    assert [f.rule_id for f in stored] == (["float32-precision"] if "fp32" in name else [])


def test_transposes_inside_the_network_still_fire(models):
    found = _ids(models["middle"])
    assert found.count(("transpose-a12", "warning")) == 2
    assert found.count(("transpose-a12-layout", NOTE)) == 1
    assert _ids(models["swap_hw"]) == [("transpose-a12", "warning")]
    assert _ids(models["middle"], "A14") == []


def test_the_verdict_never_reads_a_note_as_an_op_off_the_ane(models):
    findings = lint(inspect_model(models["middle"]), ["A12"], notes=True)
    book = LintBook(findings, "A12")
    predicted = book.predicted_ops()
    assert len(predicted) == 2 and all("transpose-a12-layout" not in p.reason for p in predicted)
    edge = next(f for f in findings if f.severity == NOTE)
    assert book.lookup(edge.op_name, edge.op_index or 0, edge.op_type) == []
    # Stored findings (LintFinding.to_json, as bisection and ingest read them) keep it so.
    stored = [LintFinding.from_json(f.to_json()) for f in findings]
    assert len(LintBook(stored, "A12").predicted_ops()) == 2


def _lint_json(path: Path, *chips: str) -> tuple[int, dict[str, Any]]:
    done = run_cli("lint", str(path), *[a for c in chips for a in ("--chip", c)], "--json")
    return done.returncode, json.loads(done.stdout)


def test_cli_tf_style_model_passes_on_a12_and_its_json_agrees(models):
    code, body = _lint_json(models["tf_style"], "A12,A14")
    assert code == 0 and body["chips"] == ["A12", "A14"]
    assert body["off_ane_predicted"] is False and body["warnings"] == 0 and body["notes"] == 1
    [note] = body["findings"]
    assert note["severity"] == "note" and note["prediction"] is False
    assert note["confidence"] in CONFIDENCES and note["source"]
    text = run_cli("lint", str(models["tf_style"]), "--chip", "A12")
    assert text.returncode == 0 and "nothing in tf_style" in text.stdout and "note" in text.stdout


def test_cli_middle_transposes_exit_3_and_the_json_counts_them(models):
    code, body = _lint_json(models["middle"], "A12", "a14")
    assert code == 3 and body["chips"] == ["A12", "A14"] and body["off_ane_predicted"] is True
    predicting = [f for f in body["findings"] if f["prediction"]]
    assert body["warnings"] == len(predicting) == 2
    assert body["notes"] == len(body["findings"]) - 2
    assert all(f["severity"] == "warning" and f["confidence"] for f in predicting)


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (("lint", "MODEL", "--chip", "A17"), "A17 Pro"),
        (("lint", "MODEL", "--chip", "A12,A99"), "A99"),
        (("lint", "MODEL", "--chip", ","), "--chip A12"),
        (("compat", "--chip", "A99"), "A99"),
        (("compat", "--chip", "A12,A17"), "A17 Pro"),
    ],
)
def test_cli_unknown_chips_are_usage_errors_everywhere(models, tmp_path, args, shown):
    argv = [str(models["tf_style"]) if a == "MODEL" else a for a in args]
    env = {**os.environ, "ANEFARM_HOME": str(tmp_path), "ANEFARM_DATABASE_URL": ""}
    done = subprocess.run([sys.executable, "-m", "orchestrator", *argv], capture_output=True,
                          text=True, check=False, env=env)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert shown in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_cli_compat_takes_a_chip_list(tmp_path):
    env = {**os.environ, "ANEFARM_HOME": str(tmp_path), "ANEFARM_DATABASE_URL": ""}
    done = subprocess.run([sys.executable, "-m", "orchestrator", "compat", "--chip", "A12,A17 Pro",
                           "--json"], capture_output=True, text=True, check=False, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"cells": []}


def test_the_docs_table_lists_every_rule_with_its_confidence():
    from orchestrator.modelkit.rules import RULES

    doc = (Path(__file__).parents[2] / "docs" / "lint-rules.md").read_text(encoding="utf-8")
    rows = {line.split("`")[1]: line for line in doc.splitlines() if line.startswith("| `")}
    for rule in RULES:
        assert rows[rule.rule_id].rstrip().endswith(f"| {rule.confidence} |"), rule.rule_id
        assert ("(note)" in rows[rule.rule_id]) == (rule.severity == NOTE)
