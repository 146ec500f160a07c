"""Bisection end to end on a simulated farm whose A12 devices run iOS 16 (no compute plan):
real Redis, a coordinator and an agent process, the `anefarm` CLI as a user runs it."""

from __future__ import annotations

import json
import tempfile
import uuid
from pathlib import Path

import pytest

from orchestrator.artifacts import ArtifactStore
from orchestrator.store import models as db
from tests.pipeline.farm import Farm, farm
from tests.pipeline.test_pipeline import submit

__all__ = ["farm"]  # the fixture: a farm with its coordinator running

pytestmark = [pytest.mark.slow]
XR = "iPhone11,8"
IOS16 = f"{XR}@16.7.8"


def signature_of(model: Path, op_name: str) -> str:
    from orchestrator import modelkit

    [op] = [o for o in modelkit.inspect_model(model).ops if o.name.startswith(op_name)]
    return modelkit.op_signature(op)


def probe_runs(farm: Farm, job: str) -> list[db.Run]:
    with farm.sessions()() as session:
        return list(session.query(db.Run).filter_by(job_id=uuid.UUID(job), purpose="probe"))


def test_a_dilated_conv_between_plain_ones_is_named_by_probe_and_reused(farm, models):
    farm.start_agent(f"{IOS16}=1", wait_for=1)
    job = submit(farm, models["sandwich"])
    report = farm.wait_job(job, timeout=180)
    [row] = report["rows"]
    # Context search names the plain convolutions carried (NONE), unless a window is too
    # close a call to tell (PARTIAL): tests/bisect/test_context_search.py pins it in-process.
    assert row["verdict"] in ("PARTIAL", "NONE") and row["os_version"] == "16.7.8"
    assert row["plan_available"] is False and row["simulated"] is True
    [off] = [o for o in row["ops_off_ane"] if o.get("role") != "carried"]
    assert off["name"].startswith("conv_dilated") and off["source"] == "probe"
    assert off["unit"] == "gpu"
    assert "dilated (atrous) convolution" in off["reason"] and "non-dilated" in off["fix"]
    bisection = row["bisection"]
    assert bisection["state"] == "done" and "without a compute plan" in bisection["trigger"]
    by_probe = {op["name"]: (op["by_probe"], op["role"]) for op in bisection["ops"]}
    for neighbour in ("conv_in_cast_fp16", "conv_out_cast_fp16"):
        assert by_probe[neighbour] in (("neuralEngine", None), ("gpu", "carried"))
    dilated = signature_of(models["sandwich"], "conv_dilated")
    probes = report["probes"]
    assert probes and all(p["simulated"] is True for p in probes)
    assert {p["parent_run"] for p in probes} == {row["run"]}
    # Alone, the small dilated convolution is too close to the timer's noise: it is lifted.
    assert sorted(p["repeat"] for p in probes if p["signature"] == dilated) == [1, 16]
    # The same dilated convolution in another model, same class and OS: no new probe for it.
    second = submit(farm, models["shares"])
    report2 = farm.wait_job(second, timeout=180)
    [row2] = report2["rows"]
    assert [p for p in report2["probes"] if p["signature"] == dilated] == []
    assert all(r.probe_signature != dilated for r in probe_runs(farm, second))
    ops2 = {op["name"]: op for op in row2["bisection"]["ops"]}
    assert ops2["dilated_cast_fp16"]["by_probe"] == "gpu"
    assert row2["bisection"]["reused"] >= 1
    assert any(
        o["name"].startswith("dilated") and o["source"] == "probe" for o in row2["ops_off_ane"]
    )
    # The compatibility matrix lists it for A12, with its unit and evidence, SIMULATED.
    out = farm.cli("compat", "--json", "--chip", "A12", "--op", "conv")
    cells = {c["signature"]: c for c in json.loads(out.stdout)["cells"]}
    cell = cells[dilated]
    assert (cell["chip"], cell["unit"], cell["label"]) == ("A12", "gpu", "SIMULATED")
    assert cell["evidence"] >= 1 and cell["lint_rule"] == "dilated-conv" and not cell["disagree"]
    assert all(c["simulated"] for c in cells.values())
    csv_out = farm.cli("compat", "--csv", "--chip", "A12").stdout
    assert dilated in csv_out and "SIMULATED" in csv_out


def probe_sha(model: Path, signature: str, tmp: Path) -> str:
    from orchestrator import modelkit

    index = modelkit.write_probes(model, tmp / "probes", signatures={signature})
    [probe] = index.probes
    return ArtifactStore(tmp / "store", 10**9).add(tmp / "probes" / probe.file).sha256


def test_a_probe_that_fails_on_the_device_leaves_the_op_unknown(farm, models):
    dilated = signature_of(models["sandwich"], "conv_dilated")
    with tempfile.TemporaryDirectory() as scratch:
        sha = probe_sha(models["sandwich"], dilated, Path(scratch))
    # The device fails to compile that probe (a model error: final, never retried).
    farm.start_agent(f"{IOS16}=1!compilefail#{sha[:12]}", wait_for=1)
    job = submit(farm, models["sandwich"])
    report = farm.wait_job(job, timeout=180)
    [row] = report["rows"]
    failed = [p for p in report["probes"] if p["signature"] == dilated]
    assert [p["status"] for p in failed] == ["failed"] and failed[0]["placement"] == "failed"
    ops = {op["name"]: op for op in row["bisection"]["ops"]}
    op = ops["conv_dilated_cast_fp16"]
    assert op["probe_status"] == "failed"  # the probe's own outcome stays on record
    if op["by_probe"] == "unknown":  # no window beside it could tell
        assert any("unknown by probe" in r for r in row["reasons"])
    else:  # a window beside it moved, or prefix search isolated it: named the cause
        assert op["role"] == "cause" and op["by_probe"] in {"gpu", "cpu", "gpu-or-cpu"}, op
    assert row["verdict"] == "NONE"  # the model's own timing stands; lint names the op
    assert report["status"] == "done"


def test_probes_timing_cannot_read_are_inconclusive_and_not_lifted(farm, models):
    # Three timed predictions per setting: fewer than the statistics need, for every run.
    farm.start_agent(f"{IOS16}=1", wait_for=1)
    job = submit(farm, models["sandwich"], extra=("--iterations", "3"))
    report = farm.wait_job(job, timeout=180)
    [row] = report["rows"]
    assert row["verdict"] == "INCONCLUSIVE" and row["bisection"]["state"] == "done"
    probes = report["probes"]
    assert probes and all(p["placement"] == "inconclusive" and p["repeat"] == 1 for p in probes)
    assert all("fewer than 5" in p["reason"] for p in probes)
    assert {op["by_probe"] for op in row["bisection"]["ops"]} == {"unknown"}
    assert row["bisection"]["inconclusive"] == row["bisection"]["signatures"]


def test_bisect_on_request_confirms_a_full_verdict(farm, models):
    farm.start_agent(f"{IOS16}=1", wait_for=1)
    job = submit(farm, models["tiny"], extra=("--bisect",))
    report = farm.wait_job(job, timeout=180)
    [row] = report["rows"]
    assert row["bisection"]["trigger"] == "requested (--bisect)"
    assert row["verdict"] == "FULL"
    assert {op["by_probe"] for op in row["bisection"]["ops"]} == {"neuralEngine"}
    assert any(r.startswith("every op runs on the ANE in its probe") for r in row["reasons"])


def test_no_bisect_and_a_full_verdict_queue_no_probes(farm, models):
    farm.start_agent(f"{IOS16}=1", wait_for=1)
    job = submit(farm, models["sandwich"], extra=("--no-bisect",))
    report = farm.wait_job(job, timeout=120)
    assert report["probes"] == [] and report["rows"][0]["bisection"] is None
    assert report["rows"][0]["verdict"] == "NONE"  # by timing, with the lint's op named
