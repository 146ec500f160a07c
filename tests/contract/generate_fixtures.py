"""Writes the contract fixtures in ios-runner/Fixtures from orchestrator.protocol.

Run ``python -m tests.contract.generate_fixtures`` after changing the protocol; the
contract tests fail while the committed files differ from what this produces.
Valid fixtures are built through the pydantic models (so they are valid by
construction); invalid ones are a valid fixture with one thing broken, named after it.
"""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from orchestrator import protocol as p
from orchestrator.stats import summarize

ROOT = Path(__file__).resolve().parents[2] / "ios-runner" / "Fixtures"
SHA = "3f" * 32
T0 = datetime(2026, 11, 25, 7, 0, 0, tzinfo=UTC)


def _setting(units: str, base: float, seed: int, **changes: Any) -> p.SettingResult:
    rng = random.Random(seed)
    samples = [round(base + rng.random(), 3) for _ in range(10)]
    # The first setting of a launch is the process's first load; the others follow it.
    provenance = "fresh_process" if seed == 0 else "warm_cache"
    values: dict[str, Any] = dict(
        compute_units=units, cold_load_ms=120.5, cold_load_provenance=provenance, warm_load_ms=8.25,
        first_prediction_ms=base * 3, latencies_ms=samples, stats=p.LatencyStats(**summarize(samples)),
    )  # fmt: skip
    return p.SettingResult(**(values | changes))


def valid() -> dict[str, Any]:
    manifest = p.RunnerManifest(
        batch_id="0b0e6c2a-4f4e-4a8e-9d0c-1c2d3e4f5a6b-a1",
        model=p.ManifestModel(filename="conv10x10.mlpackage", sha256=SHA, format="mlpackage"),
        compute_units=list(p.ComputeUnits), iterations=10, warmup=2, rounds=5,
        time_budget_s=540, input_seed=42, compute_plan=True,
    )  # fmt: skip
    device = p.DeviceFacts(product_type="iPhone11,8", os_version="18.7", os_build="22H20")
    plan = p.ComputePlan(ops=[
        p.OpPlan(index=0, name="conv_0", op_type="conv", preferred="neuralEngine",
                 supported=["neuralEngine", "gpu", "cpu"], cost=0.9),
        p.OpPlan(index=1, name="relu_0", op_type="relu", preferred="neuralEngine",
                 supported=["neuralEngine", "gpu", "cpu"], cost=0.1),
    ])  # fmt: skip
    common = dict(batch_id=manifest.batch_id, runner_version="1.0.0", simulated=False, device=device,
                  model_sha256=SHA, thermal_before="nominal", thermal_after="fair",
                  started_at=T0, finished_at=T0 + timedelta(seconds=12))  # fmt: skip
    ok = p.RunnerResult(
        **common, compile_ms=900.0, compile_cached=False, cooldowns=1, compute_plan=plan,
        settings=[_setting(u, 2.0 + i, i) for i, u in enumerate(p.ComputeUnits)],
    )  # fmt: skip
    setting_error = p.RunnerResult(
        **common, settings=[
            _setting("all", 2.0, 1),
            p.SettingResult(compute_units="cpuAndNeuralEngine",
                            error=p.RunnerError(kind="load", message="ANECCompile FAILED")),
        ],
    )  # fmt: skip
    batch_error = p.RunnerResult(
        **common, error=p.RunnerError(kind="compile", message="unsupported op: custom layer")
    )
    partial = p.RunnerResult(**common, partial=True, settings=[_setting("cpuOnly", 9.0, 3)])
    # The app went to the background during `cpuAndGPU`'s slot: its earlier samples stay.
    left = (
        "cpuAndGPU: the app left the foreground during the slot of round 2; samples before it kept"
    )
    interrupted = p.RunnerResult(
        **common, settings=[
            _setting("all", 2.0, 0, cold_load_ms=950.0, cold_load_provenance="fresh_compile"),
            _setting("cpuAndGPU", 4.0, 1, error=p.RunnerError(kind="interrupted", message=left)),
        ],
    )  # fmt: skip
    never_measured = p.RunnerResult(
        **common, error=p.RunnerError(kind="interrupted", message="the app was in the background before any setting was measured"),
        settings=[p.SettingResult(compute_units="all", error=p.RunnerError(kind="interrupted", message="all: the app is not in the foreground"))],
    )  # fmt: skip
    fresh_compile = manifest.model_copy(update={"cold_load": "fresh_compile"})
    batch = p.RunBatch(
        run_id=UUID("0b0e6c2a-4f4e-4a8e-9d0c-1c2d3e4f5a6b"), attempt=1,
        job_id=UUID("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"),
        model=p.ModelRef(sha256=SHA, filename="conv10x10.mlpackage", format="mlpackage",
                         size_bytes=20480, location="http://coordinator:8470"),
        device_class="iPhone11,8", spec=p.RunSpec(compute_units=list(p.ComputeUnits)), created_at=T0,
    )  # fmt: skip
    batch_result = p.RunBatchResult(
        run_id=batch.run_id, attempt=1, job_id=batch.job_id, agent="mac-mini-1",
        device=p.DeviceInfo(udid="00008020-001234567890002E", product_type="iPhone11,8",
                            os_version="18.7", os_build="22H20", name="XR #1", simulated=False),
        outcome="ok", runner_result=ok, started_at=T0, finished_at=T0 + timedelta(seconds=15),
    )  # fmt: skip
    # Packed probes (version 2): three models in one launch, the second failing to compile.
    shas = [SHA, "4a" * 32, "5b" * 32]
    models = [p.ManifestModel(filename=f"probe-{i}.mlpackage", sha256=sha, format="mlpackage")
              for i, sha in enumerate(shas)]  # fmt: skip
    packed_manifest = manifest.model_copy(
        update={"schema_version": 2, "model": models[0], "models": models}
    )

    def model_result(i: int, **changes: Any) -> p.ModelResult:
        at = T0 + timedelta(seconds=2 + 3 * i)
        values: dict[str, Any] = dict(
            model_sha256=shas[i], compile_ms=80.0, settings=[_setting(u, 1.0 + j, j + 10 * i)
            for j, u in enumerate(p.ComputeUnits)], started_at=at,
            finished_at=at + timedelta(seconds=2.5),
        )  # fmt: skip
        return p.ModelResult(**(values | changes))

    packed_result = p.RunnerResult(
        **(common | {"model_sha256": shas[0]}), schema_version=2, models=[
            model_result(0, compute_plan=plan),
            model_result(1, settings=[], error=p.RunnerError(kind="compile", message="unsupported op")),
            model_result(2),
        ],
    )  # fmt: skip
    packed_batch = p.RunBatch.pack([batch] + [
        batch.model_copy(update={"run_id": UUID(int=0x1000 + i), "model": batch.model.model_copy(
            update={"sha256": shas[i], "filename": f"probe-{i}.mlpackage"})})
        for i in (1, 2)
    ])  # fmt: skip
    items: dict[str, p.Message] = {
        "runner-manifest-packed": packed_manifest,
        "runner-result-packed": packed_result,
        "run-batch-packed": packed_batch,
        "runner-manifest-ok": manifest,
        "runner-manifest-fresh-compile": fresh_compile,
        "runner-result-ok": ok,
        "runner-result-setting-error": setting_error,
        "runner-result-batch-error": batch_error,
        "runner-result-partial": partial,
        "runner-result-interrupted": interrupted,
        "runner-result-interrupted-batch": never_measured,
        "run-batch-ok": batch,
        "run-batch-result-ok": batch_result,
    }
    return {name: item.model_dump(mode="json") for name, item in items.items()}


def invalid(good: dict[str, Any]) -> dict[str, Any]:
    def broken(name: str, change: Any) -> Any:
        data = copy.deepcopy(good[name])
        change(data)
        return data

    def first_setting(d: dict[str, Any]) -> dict[str, Any]:
        setting: dict[str, Any] = d["settings"][0]
        return setting

    return {
        "runner-result-negative-latency": broken("runner-result-ok", lambda d: first_setting(d)["latencies_ms"].__setitem__(0, -1.0)),
        "runner-result-nan-as-string": broken("runner-result-ok", lambda d: first_setting(d).__setitem__("cold_load_ms", "NaN")),
        "runner-result-unknown-field": broken("runner-result-ok", lambda d: d.__setitem__("gpu_temperature", 40)),
        "runner-result-bad-version": broken("runner-result-ok", lambda d: d.__setitem__("schema_version", 3)),
        "runner-result-packed-as-version-1": broken("runner-result-packed", lambda d: d.__setitem__("schema_version", 1)),
        "runner-result-packed-with-settings": broken("runner-result-packed", lambda d: d.__setitem__("settings", d["models"][0]["settings"])),
        "runner-manifest-packed-as-version-1": broken("runner-manifest-packed", lambda d: d.__setitem__("schema_version", 1)),
        "runner-manifest-models-without-model-first": broken("runner-manifest-packed", lambda d: d["models"].reverse()),
        "runner-result-stats-out-of-order": broken("runner-result-ok", lambda d: first_setting(d)["stats"].__setitem__("p50", 1e6)),
        "runner-result-no-samples-no-error": broken("runner-result-ok", lambda d: first_setting(d).update(latencies_ms=[], stats=None)),
        "runner-result-unknown-compute-units": broken("runner-result-ok", lambda d: first_setting(d).__setitem__("compute_units", "gpuOnly")),
        "runner-result-cold-load-without-provenance": broken("runner-result-ok", lambda d: first_setting(d).pop("cold_load_provenance")),
        "runner-result-unknown-provenance": broken("runner-result-ok", lambda d: first_setting(d).__setitem__("cold_load_provenance", "lukewarm")),
        "runner-result-provenance-without-cold-load": broken("runner-result-ok", lambda d: first_setting(d).__setitem__("cold_load_ms", None)),
        "runner-manifest-unknown-cold-load": broken("runner-manifest-ok", lambda d: d.__setitem__("cold_load", "lukewarm")),
        "runner-result-bad-sha256": broken("runner-result-ok", lambda d: d.__setitem__("model_sha256", "xyz")),
        "runner-result-duplicate-setting": broken("runner-result-ok", lambda d: d["settings"].append(copy.deepcopy(d["settings"][0]))),
        "runner-manifest-bad-version": broken("runner-manifest-ok", lambda d: d.__setitem__("schema_version", 3)),
        "runner-manifest-no-settings": broken("runner-manifest-ok", lambda d: d.__setitem__("compute_units", [])),
        "runner-manifest-zero-iterations": broken("runner-manifest-ok", lambda d: d.__setitem__("iterations", 0)),
    }  # fmt: skip


def stats_vectors() -> list[dict[str, Any]]:
    rng = random.Random(2026)
    inputs = [[3.0], [1.0, 2.0], [4.0, 1.0, 3.0, 2.0], [0.5, 0.5, 0.5],
              [round(rng.uniform(0.1, 40.0), 4) for _ in range(37)],
              [round(rng.lognormvariate(1.0, 0.5), 4) for _ in range(200)]]  # fmt: skip
    return [{"samples": s, "expected": summarize(s)} for s in inputs]


def render(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def expected_files() -> dict[Path, str]:
    good = valid()
    files = {ROOT / "valid" / f"{k}.json": render(v) for k, v in good.items()}
    files |= {ROOT / "invalid" / f"{k}.json": render(v) for k, v in invalid(good).items()}
    files[ROOT / "stats-vectors.json"] = render(stats_vectors())
    return files


if __name__ == "__main__":
    for path, text in expected_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(path)
