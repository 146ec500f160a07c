"""Issue 18's acceptance story on the analysis alone (the wiring's own test drives a sweep):
4 models × 3 device classes over 25 nights, run-to-run σ 0.02 (SIMULATED)."""

from __future__ import annotations

from dataclasses import replace

from orchestrator.regress import Check, PlacedOp, Status, analyse, findings, group_findings
from tests.regress.factory import BASE, history, night, quiet

CLASSES = ("iPhone12,1", "iPhone14,5", "iPhone15,2")
SLOWED = "iPhone14,5"  # 15 % slower from night 18 (index 17)
UPGRADE = 20  # night 21: iOS 18.2 moves dilated convolutions off the ANE
RETRAINED = 22  # night 23: model3 retrained, 20 % faster


def conditions(model: int):
    def at(i: int):
        c = BASE
        if i >= UPGRADE:
            c = replace(c, os_version="18.2", os_build="22C152")
        if model == 3 and i >= RETRAINED:
            c = replace(c, model_sha256="c" * 64)
        return c

    return at


def placement(model: int):
    def at(i: int) -> dict[str, PlacedOp]:
        ops = {"conv_1": PlacedOp("neuralEngine", "conv")}
        if model < 2:  # two of the four models have a dilated convolution
            ops["conv_2"] = PlacedOp("gpu" if i >= UPGRADE else "neuralEngine", "conv dilated")
        return ops

    return at


def fleet():
    out = []
    for m in range(4):
        for c, cls in enumerate(CLASSES):
            medians = quiet(25, sigma=0.02, seed=100 * m + c)
            for i in range(25):
                if cls == SLOWED and i >= 17:
                    medians[i] *= 1.15
                if m == 3 and i >= RETRAINED:
                    medians[i] *= 0.8
            out.append(history(medians, series=f"model{m}", device_class=cls, seed=m * 10 + c,
                               placement=placement(m), conditions=conditions(m)))  # fmt: skip
    return out


def test_the_issues_story():
    result = analyse(fleet())
    for i in range(17):
        assert [f.message for f in findings(result, night(i), alerts_only=True)] == []
    # The slowed class: by night 19, one summary naming the class and no change.
    by_19 = findings(result, night(17), alerts_only=True) + findings(
        result, night(18), alerts_only=True
    )
    slowed = [s for s in group_findings("nightly", by_19) if s.direction == "regression"]
    assert slowed and all(s.cause == ("unchanged", SLOWED) for s in slowed)
    assert "iPhone14,5, device/OS unchanged, model unchanged: latency +1" in slowed[-1].title
    assert {f.key.series for s in slowed for f in s.findings} == {f"model{m}" for m in range(4)}
    # The OS upgrade: one grouped placement summary naming the op kind and the new build.
    upgrade = group_findings("nightly", findings(result, night(UPGRADE), alerts_only=True))
    placement_summaries = [
        s for s in upgrade if any(f.check is Check.PLACEMENT for f in s.findings)
    ]
    (summary,) = placement_summaries
    assert "iOS 18.2 (22C152)" in summary.title
    assert "conv dilated moved neuralEngine → gpu on 2 models × 3 device classes" in summary.title
    # The retrained model: an IMPROVEMENT attributed to the model, within two nights.
    improved = [
        f
        for i in (RETRAINED, RETRAINED + 1)
        for f in findings(result, night(i), alerts_only=True)
        if f.check is Check.LATENCY and f.status is Status.IMPROVEMENT
    ]
    assert {f.key.series for f in improved} == {"model3"}
    assert all(f.attribution.changed("model sha256") for f in improved)
