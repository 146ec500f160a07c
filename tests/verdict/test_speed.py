"""decide() stays cheap enough for ingest: 4 settings × 200 samples and a 1,000-op plan."""

from __future__ import annotations

import time

from orchestrator.protocol import VerdictKind
from orchestrator.verdict import decide
from tests.verdict import builders as b

BUDGET_S = 0.25  # the aim is < 50 ms; 5× headroom for a shared, loaded CI machine


def test_decide_on_a_big_result_is_fast() -> None:
    ops = [b.op(i, "conv", b.GPU_UNIT if i % 10 == 0 else b.ANE_UNIT, 0.001) for i in range(1000)]
    lint = [b.Finding(op_index=i, op_name=f"conv_{i}", op_type="conv") for i in range(0, 1000, 20)]
    runner = b.result(b.signature(b.ANE_USED, n=200), compute_plan=b.plan(*ops))
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        verdict = decide(runner, device_class=b.XR, chip="A12", simulated=True, lint=lint)
        best = min(best, time.perf_counter() - start)
    assert verdict.verdict is VerdictKind.PARTIAL and len(verdict.ops_off_ane) == 100
    assert best < BUDGET_S, f"decide() took {best * 1000:.0f} ms"
