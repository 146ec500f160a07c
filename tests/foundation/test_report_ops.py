"""The report's JSON names an op's unit as the text does: a probe's "GPU or CPU" is not
"unknown" in one place and gpu-or-cpu in another (issue 13)."""

from orchestrator.report import _ops_off_ane


def test_an_op_placed_by_probe_says_the_probes_unit_in_json():
    payload = {
        "ops_off_ane": [
            {"name": "pool", "type": "max_pool", "unit": "unknown", "source": "probe"},
            {"name": "cast", "type": "cast", "unit": "gpu", "source": "plan"},
            {"name": "up", "type": "upsample", "unit": "unknown", "source": "probe"},
        ]
    }
    ops = _ops_off_ane(payload, {"pool": "gpu-or-cpu", "cast": "cpu"})
    assert [(op.name, op.unit) for op in ops] == [
        ("pool", "gpu-or-cpu"),
        ("cast", "gpu"),  # by plan: the plan's word stands
        ("up", "unknown"),  # not placed by any probe
    ]
