"""Context search (issue 21 item 2): ops off the ANE named cause or carried, on a SIMULATED
XR on iOS 16 (no compute plan), against the simulator's ground truth.

The pipeline runs in this process but the transport (bench/packed_probes.py's PackedFarm:
dispatch, the agent's execute_all on the simulated device, the real Ingestor on a real
Redis); the ground truth is ``agents.devices.simulation``'s own placement under `all`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from agents.devices.simulation.chips import chip_model
from agents.devices.simulation.placement import CARRIED, CAUSE, context_roles
from agents.devices.simulation.profile import profile
from bench.packed_probes import PackedFarm
from bench.seeded_models import random_model, truth
from orchestrator import modelkit
from orchestrator.bisect.mapping import OpByProbe
from orchestrator.bisect.window_reading import read_window
from orchestrator.bisect.window_runs import Window, windows
from orchestrator.modelkit.windows import write_window
from orchestrator.protocol import ComputeUnits
from orchestrator.render import print_table
from orchestrator.report import report_model
from orchestrator.report_rows import Report
from orchestrator.store import models as db
from tests.verdict.builders import ane_gpu_paths

XR_IOS16 = "iPhone11,8@16.7.8=1"
SANDWICH = "conv_sandwich_dilated.mlpackage"
# A seeded random model (bench/context_search.py) whose runs beside its three causes mostly
# stay on the ANE on the A12, while the input cast is carried: windows are needed.
MIXED_SEED = 508


def _op(index: int, unit: str, status: str = "placed") -> OpByProbe:
    return OpByProbe(index, f"op{index}", "conv", unit, status, 0.9, "")


def test_windows_cut_each_run_beside_a_gpu_cause_with_its_borders() -> None:
    placed = [
        _op(0, "neuralEngine"), _op(1, "neuralEngine"), _op(2, "gpu"),
        _op(3, "unknown", "inconclusive"), _op(4, "neuralEngine"), _op(5, "cpu"),
        _op(6, "neuralEngine"),
    ]  # fmt: skip
    assert windows(placed) == [
        Window(start=0, stop=3, inner=[0, 1], causes=[2]),
        # An op not placed stays inside the run: only ops placed off the ANE are borders.
        Window(start=2, stop=6, inner=[3, 4], causes=[2, 5]),
        # op 6 borders only a CPU op, which cannot pull it to the GPU: no window.
    ]
    assert windows([_op(0, "neuralEngine"), _op(1, "neuralEngine")]) == []


@pytest.mark.parametrize(
    ("under_all", "spread", "expected"),
    [
        (1.0, 0.01, "moved"),  # `all` is the GPU path: the run went with its cause
        (0.7, 0.01, "stays"),  # faster: the ANE takes part
        (1.3, 0.01, "stays"),  # slower, yet another path than the GPU's: a split window
        (1.0, 0.3, "unknown"),  # too noisy for the ±5 % band: nothing is named
    ],
)
def test_a_window_is_read_from_all_against_the_gpu_path(
    under_all: float, spread: float, expected: str
) -> None:
    reading = read_window(ane_gpu_paths(under_all, spread=spread))
    assert reading.verdict == expected, reading.reason


def test_the_simulator_decides_a_window_as_in_the_whole_model(
    samples: dict[str, Path], tmp_path: Path
) -> None:
    model = samples[SANDWICH]
    ops = modelkit.inspect_model(model).ops
    a12 = chip_model("A12")
    whole = profile(ops, a12)
    units = whole.placements[ComputeUnits.ALL].units
    # Ground truth: the dilated convolution cannot run on the A12's ANE; everything else
    # could, and is moved to the GPU with it (the casts and the plain convolutions).
    roles = context_roles(whole.support, units)
    assert roles == [(CARRIED, 2), (CARRIED, 2), (CAUSE, None), (CARRIED, 2), (CARRIED, 2)]
    for start, stop in ((0, 3), (2, 5), (1, 4)):
        cut = write_window(model, start, stop, tmp_path / f"w{start}")
        window_ops = modelkit.inspect_model(cut).ops
        assert [op.name for op in window_ops] == [op.name for op in ops[start:stop]]
        inside = profile(window_ops, a12).placements[ComputeUnits.ALL].units
        assert inside == units[start:stop]


def _run(
    home: Path, redis_url: str, model: Path, farm_spec: str = XR_IOS16
) -> tuple[PackedFarm, Report, list[Any]]:
    farm = PackedFarm.start(home, redis_url, packing=True, farm=farm_spec)
    job = farm.submit(model, iterations=50, bisect="auto")
    farm.run_all()
    with farm.sessions() as session:
        report = report_model(session, job)
        windows_run = [
            launch
            for launch in farm.probe_launches()
            if "window" in (_probe(session, launch.batch.members()[0].run_id).bisection or {})
        ]
    return farm, report, windows_run


def _probe(session: Any, run_id: Any) -> db.Run:
    run = session.get(db.Run, run_id)
    assert run is not None
    return run


def _named(report: Report) -> dict[str, tuple[str | None, str | None]]:
    [row] = report.rows
    return {str(o.name): (o.role, o.carried_by) for o in row.ops_off_ane if o.source == "probe"}


def _expected(model: Path, device: str = "iPhone11,8") -> dict[str, tuple[str | None, str | None]]:
    ops = modelkit.inspect_model(model).ops
    return {op.name: role for op, role in zip(ops, truth(model, device), strict=True) if role[0]}


def test_the_dilated_conv_is_the_cause_and_its_neighbours_are_carried(
    tmp_path: Path, redis_url: str, samples: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    model = samples[SANDWICH]
    farm, report, window_launches = _run(tmp_path, redis_url, model)
    try:
        [row] = report.rows
        assert row.simulated is True and row.plan_available is False
        named = _named(report)
        dilated = "conv_dilated_cast_fp16"
        assert named[dilated] == (CAUSE, None)
        neighbours = [named.get("conv_in_cast_fp16"), named.get("conv_out_cast_fp16")]
        assert neighbours == [(CARRIED, dilated)] * 2, row.reasons
        assert named == _expected(model)  # every op truly off the ANE, with its role
        cause = next(o for o in row.ops_off_ane if o.name == dilated)
        assert "dilated" in (cause.reason or "") and cause.unit == "gpu"
        carried = next(o for o in row.ops_off_ane if o.name == "conv_in_cast_fp16")
        assert (carried.fix or "").startswith(f"fix {dilated}")
        assert row.verdict == "NONE" and row.ane_share == 0
        ops = {op.name: op for op in row.bisection.ops} if row.bisection else {}
        assert ops["conv_out_cast_fp16"].role == CARRIED and not ops["conv_out_cast_fp16"].disagree
        # Bounded: extra probe batches per cause ≤ log2(n) (here none: the model's own
        # timing already shows all of it off the ANE, the one window that needs no probe).
        n = len(ops)
        assert len(window_launches) <= 1 * math.log2(n)
        print_table(report)
        text = capsys.readouterr().out
        assert f"carried to the GPU with {dilated}" in " ".join(text.split())
    finally:
        farm.close()


def test_windows_name_only_what_the_simulator_moves(tmp_path: Path, redis_url: str) -> None:
    model = random_model(tmp_path / "mixed.mlpackage", MIXED_SEED)
    expected = _expected(model)
    assert {role for role, _ in expected.values()} == {CAUSE, CARRIED}  # the premise
    farm, report, window_launches = _run(tmp_path / "home", redis_url, model)
    try:
        [row] = report.rows
        assert row.verdict == "PARTIAL"
        named = _named(report)
        # Nothing named wrongly: every op named is truly off the ANE, with its role.
        assert {name: expected.get(name) for name in named} == named
        # Every cause is named; a carried op may be missed (a window timing cannot read).
        assert {n for n, (role, _) in expected.items() if role == CAUSE} <= set(named)
        windows_probed = [p for p in report.probes if (p.op_type or "").startswith("window")]
        assert windows_probed and all(
            p.placement in {"moved", "stays", "unknown"} for p in windows_probed
        )
        causes = sum(1 for role, _ in expected.values() if role == CAUSE)
        n = len(modelkit.inspect_model(model).ops)
        assert 1 <= len(window_launches) <= causes * math.log2(n)
        assert any(r.startswith("after context search:") for r in row.reasons)
    finally:
        farm.close()


def test_a_cause_too_small_to_time_alone_borders_windows_by_lint(
    tmp_path: Path, redis_url: str
) -> None:
    # Seed 2122 on a SIMULATED iPhone 12 (A14): the one cause, a 15×15 max pooling, is too
    # small for its own probe even lifted. Lint names the pooling: the model's own timing
    # shows all of it off the ANE, or windows bordered by the pooling (provisionally) do.
    model = random_model(tmp_path / "small_cause.mlpackage", 2122)
    expected = _expected(model, "iPhone13,2")
    farm, report, window_launches = _run(tmp_path / "home", redis_url, model, "iPhone13,2@16.7.8=1")
    try:
        [row] = report.rows
        named = _named(report)
        pool = next(n for n, (role, _) in expected.items() if role == CAUSE)
        assert pool.startswith("bigpool") and named[pool] == (CAUSE, None)
        assert {name: expected.get(name) for name in named} == named  # none wrongly
        assert len(named) >= 0.9 * len(expected)
        # One round of windows when the model's timing is not decisive, none when it is.
        n = len(row.bisection.ops) if row.bisection else 0
        assert len(window_launches) <= math.log2(n)
    finally:
        farm.close()
