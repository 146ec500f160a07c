"""The runner app on a fake device: what ``ios-runner`` does once DVT launched it, played
over the fake container (``fake_container``), as strict as the Swift side about what it
finds there (``Mailbox.process`` and ``Harness.run``/``runPacked``):

* the manifest is decoded strictly; one that does not decode, is for another batch, or
  names a model file the inbox lacks still gets a ``result.json`` with a ``manifest``
  error (the Swift mailbox answers so the agent never waits for nothing);
* a model is where the manifest says, ``inbox/<batch>/<filename>``: an ``.mlpackage`` is a
  folder with its ``Manifest.json`` at the top (Core ML compiles nothing else), an
  ``.mlmodel`` a file; a model that is not is that model's ``compile`` failure;
* a packed manifest (version 2) gets one result with a ``models`` entry per model, in its
  order, each measured on its own;
* ``behaviour`` scripts the app (hang, crash, oom, detach, malformed) and ``crash_models``
  crashes it whenever a launch carries one of those models (sha256s): one bad probe.

With ``runner_model`` (a SIMULATED device of the behaviour model, in-process fakes only)
the numbers are that device's, so a bisection through the iOS driver places ops as the
simulated farm does; otherwise they are small synthetic samples. Either way every result
says ``simulated=True``: a fake device is not a real measurement.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from orchestrator import protocol as p
from orchestrator.stats import summarize

if TYPE_CHECKING:
    from tests.ios.fake_developer import FakeDeveloperServices

RUNNER_PID = 4242
CRASH_REPORT = "AneFarmRunner-2026-01-01-120000.ips"
JETSAM_REPORT = "JetsamEvent-2026-01-01-120000.ips"
INBOX, OUTBOX = "Documents/anefarm/inbox", "Documents/anefarm/outbox"


def state(device: Any, name: str, default: Any) -> Any:
    """A FakeIPhone field the worker-side DeviceView (fake_shared.py) may not share."""
    return getattr(device, name, default)


async def play(services: FakeDeveloperServices, batch: str) -> None:
    """The launched app, from reading its inbox to its done marker (or its crash)."""
    device = services.device
    await asyncio.sleep(0.05)
    services.log(f"batch {batch}: manifest read", "com.anefarm.runner")
    if device.behaviour == "hang":
        return
    raw = device.container.get(f"{INBOX}/{batch}/manifest.json", b"")
    manifest, refused = _manifest(raw, batch)
    carried = {m.sha256 for m in manifest.all_models} if manifest is not None else set()
    if device.behaviour in ("crash", "oom") or carried & set(state(device, "crash_models", [])):
        _crash(services, oom=device.behaviour == "oom")
        return
    if device.behaviour == "detach":
        services.server.detach(device.udid)
        return
    out = f"{OUTBOX}/{batch}"
    if device.behaviour == "malformed":
        device.container[f"{out}/result.json"] = b'{"batch_id": "truncated'
    elif manifest is None:
        device.container[f"{out}/result.json"] = _failed(device, batch, refused).encode()
    else:
        # Measuring takes time: 2 ms per prediction is quick, but not instantaneous.
        predictions = (manifest.iterations + manifest.warmup) * len(manifest.compute_units)
        await asyncio.sleep(0.002 * predictions * len(manifest.all_models))
        try:
            result = _measure(services, manifest)
        except Exception as error:  # noqa: BLE001 - the behaviour model crashed the app
            services.log(f"runner died: {type(error).__name__}: {error}", "com.anefarm.runner")
            _crash(services, oom=False)
            return
        device.container[f"{out}/result.json"] = result.encode()
    services.log("compiled model, espresso plan ready", "com.apple.espresso")
    device.container[f"{out}/done"] = b""
    services.running = False


def _manifest(raw: bytes, batch: str) -> tuple[p.RunnerManifest | None, str]:
    try:
        manifest = p.RunnerManifest.model_validate_json(raw)
    except ValidationError as error:
        first = error.errors()[0]
        return None, f"bad manifest.json for batch {batch}: {first['msg']}"
    if manifest.batch_id != batch:
        return None, f"manifest batch_id {manifest.batch_id} does not match its folder {batch}"
    return manifest, ""


def _crash(services: FakeDeveloperServices, *, oom: bool) -> None:
    device = services.device
    if oom:  # killed by jetsam for memory: no crash of its own, a JetsamEvent
        name, report = JETSAM_REPORT, jetsam_ips(device)
    else:
        services.log("EXC_BAD_ACCESS in MLModel predict", "com.apple.espresso")
        name, report = CRASH_REPORT, crash_ips(device)
    # ReportCrash writes it where only crashreportmover (flush) moves it from; the
    # worker-side view of a shared fake has no such place: visible at once there.
    reports = state(device, "pending_crash_reports", device.crash_reports)
    reports[name] = report
    services.running = False


def _model_problem(container: Any, folder: str, entry: p.ManifestModel) -> str | None:
    """Why Core ML could not compile the model as it sits in the inbox, or None."""
    path = f"{folder}/{entry.filename}"
    inside = [k for k in container if k.startswith(path + "/")]
    if entry.filename.endswith(".mlpackage"):
        if f"{path}/Manifest.json" not in container:
            nested = sorted(k for k in inside if k.endswith("/Manifest.json"))
            where = f" (found {nested[0].removeprefix(folder + '/')})" if nested else ""
            return f"{entry.filename} is not a model package: no Manifest.json at its top{where}"
        return None
    return None if path in container else f"{entry.filename} is a folder, not a model file"


def _measure(services: FakeDeveloperServices, manifest: p.RunnerManifest) -> str:
    device, folder = services.device, f"{INBOX}/{manifest.batch_id}"
    container = device.container
    for entry in manifest.all_models:
        present = f"{folder}/{entry.filename}" in container or any(
            k.startswith(f"{folder}/{entry.filename}/") for k in container
        )
        if not present:
            why = f"model file {entry.filename} is missing from the inbox; push it before manifest.json"
            return _failed(device, manifest.batch_id, why, entry.sha256)
    problems = {e.sha256: _model_problem(container, folder, e) for e in manifest.all_models}
    model = state(device, "runner_model", None)
    if model is not None and not any(problems.values()):
        return _behaviour_model(model, container, folder, manifest).model_dump_json()
    if manifest.models is None:
        problem = problems[manifest.model.sha256]
        if problem is not None:
            return _failed(device, manifest.batch_id, f"compile: {problem}", manifest.model.sha256,
                           kind=p.RunnerErrorKind.COMPILE)  # fmt: skip
        return fake_result(device, manifest)
    now = datetime.now(UTC)
    models = []
    for entry in manifest.models:
        problem = problems[entry.sha256]
        if problem is not None:
            error = p.RunnerError(kind=p.RunnerErrorKind.COMPILE, message=f"compile: {problem}")
            models.append(p.ModelResult(model_sha256=entry.sha256, error=error, started_at=now,
                                        finished_at=now))  # fmt: skip
            continue
        one = p.RunnerResult.model_validate_json(fake_result(device, manifest, entry))
        models.append(p.ModelResult(model_sha256=entry.sha256, compile_ms=12.0,
                                    settings=one.settings, started_at=now, finished_at=now))  # fmt: skip
    return p.RunnerResult(
        schema_version=p.PACKED_SCHEMA_VERSION, batch_id=manifest.batch_id,
        runner_version="fake-1", simulated=True, device=_facts(device),
        model_sha256=manifest.model.sha256, thermal_before=p.ThermalState.NOMINAL,
        thermal_after=p.ThermalState.NOMINAL, models=models, started_at=now, finished_at=now,
    ).model_dump_json()  # fmt: skip


def _behaviour_model(
    model: Any, container: Any, folder: str, manifest: p.RunnerManifest
) -> p.RunnerResult:
    """The SIMULATED device's runner over the models as pushed (written out for it)."""
    with tempfile.TemporaryDirectory(prefix="fake-runner-") as scratch:
        paths = []
        for entry in manifest.all_models:
            target = Path(scratch) / entry.filename
            prefix = f"{folder}/{entry.filename}"
            for key in [k for k in container if k == prefix or k.startswith(prefix + "/")]:
                file = Path(scratch) / key.removeprefix(folder + "/")
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_bytes(container[key])
            paths.append(target)
        if manifest.models is not None:
            result: p.RunnerResult = model.run_packed(manifest, paths, manifest.time_budget_s * 2)
        else:
            result = model.run(manifest, paths[0], manifest.time_budget_s * 2)
        return result


def _facts(device: Any) -> p.DeviceFacts:
    return p.DeviceFacts(product_type=device.product_type, os_version=device.os_version,
                         os_build=device.build)  # fmt: skip


def _failed(device: Any, batch: str, message: str, sha: str | None = None,
            kind: p.RunnerErrorKind = p.RunnerErrorKind.MANIFEST) -> str:  # fmt: skip
    now = datetime.now(UTC)
    return p.RunnerResult(
        batch_id=batch, runner_version="fake-1", simulated=True, device=_facts(device),
        model_sha256=sha or "0" * 64, thermal_before=p.ThermalState.NOMINAL,
        thermal_after=p.ThermalState.NOMINAL, error=p.RunnerError(kind=kind, message=message[:400]),
        started_at=now, finished_at=now,
    ).model_dump_json()  # fmt: skip


def fake_result(
    device: Any, manifest: p.RunnerManifest, entry: p.ManifestModel | None = None
) -> str:
    """A version 1 result of one model (``entry``, default the manifest's)."""
    now = datetime.now(UTC)
    settings = []
    for index, units in enumerate(manifest.compute_units):
        samples = [1.0 + index + i * 0.01 for i in range(manifest.iterations)]
        # As the Swift harness labels them: the launch's first load, then loads of a model
        # the process already holds.
        provenance = "fresh_process" if index == 0 else "warm_cache"
        settings.append(p.SettingResult(compute_units=units, cold_load_ms=20.0, warm_load_ms=5.0,
                                        cold_load_provenance=provenance,
                                        first_prediction_ms=3.0, latencies_ms=samples,
                                        stats=p.LatencyStats(**summarize(samples))))  # fmt: skip
    result = p.RunnerResult(batch_id=manifest.batch_id, runner_version="fake-1", simulated=True,
                            device=_facts(device), model_sha256=(entry or manifest.model).sha256,
                            thermal_before=p.ThermalState.NOMINAL, thermal_after=p.ThermalState.NOMINAL,
                            settings=settings, started_at=now, finished_at=now)  # fmt: skip
    return result.model_dump_json()


def crash_ips(device: Any, pid: int = RUNNER_PID) -> str:
    """An iOS 15+ .ips crash report: a JSON header line, then the JSON body."""
    header = {"app_name": "AneFarmRunner", "bug_type": "309", "name": "AneFarmRunner",
              "os_version": f"iPhone OS {device.os_version} ({device.build})",
              "timestamp": "2026-01-01 12:00:00.00 +0000"}  # fmt: skip
    body = {"pid": pid, "procName": "AneFarmRunner", "modelCode": device.product_type,
            "exception": {"type": "EXC_BAD_ACCESS", "signal": "SIGSEGV"},
            "termination": {"indicator": "EXC_BAD_ACCESS (SIGSEGV)"}}  # fmt: skip
    return json.dumps(header) + "\n" + json.dumps(body, indent=2)


def jetsam_ips(device: Any, killed: str = "AneFarmRunner", pid: int = RUNNER_PID) -> str:
    """A JetsamEvent report (bug_type 298): every process, the killed one with its reason."""
    header = {"bug_type": "298", "timestamp": "2026-01-01 12:00:00.00 +0000",
              "os_version": f"iPhone OS {device.os_version} ({device.build})"}  # fmt: skip
    alive = [("SpringBoard", 34), ("AneFarmRunner", RUNNER_PID)]
    processes: list[dict[str, Any]] = [{"name": name, "pid": number, "rpages": 9000}
                                       for name, number in alive if (name, number) != (killed, pid)]  # fmt: skip
    processes.append({"name": killed, "pid": pid, "rpages": 180000, "reason": "per-process-limit"})
    body = {"product": device.product_type, "largestProcess": "AneFarmRunner",
            "processes": processes}  # fmt: skip
    return json.dumps(header) + "\n" + json.dumps(body, indent=2)
