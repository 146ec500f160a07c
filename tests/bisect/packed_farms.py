"""What the packed-probe tests (tests/bisect, tests/ios) share about a PackedFarm
(bench/packed_probes.py): the farm they bisect on, and where its bisection placed each
op signature, which packing must not change."""

from __future__ import annotations

from bench.packed_probes import PackedFarm

XR_IOS16 = "iPhone11,8@16.7.8=1"


def placements(farm: PackedFarm) -> dict[str, tuple[str, str]]:
    """Op signature → (compute unit, status) of the farm's finished bisection."""
    parent = farm.parent(farm.job)
    assert parent.bisect_state == "done"
    signatures = (parent.bisection or {})["signatures"]
    return {s: (v["unit"], v["status"]) for s, v in signatures.items()}
