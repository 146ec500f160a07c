"""Packed probes: the probe runs of one parent in as few runner launches as the batch's
time budget allows (docs/bisection.md, "Packed probes").

A runner launch costs ≈ 1.5 s before anything is measured (the behaviour model's
``RUNNER_LAUNCH_S``; DVT on a real phone is no faster), and a single-op probe measures for
well under a second: one launch per probe spent most of a bisection's device time on
launching. Probe runs of one parent share everything but their model and inputs — same
device (pinned), OS, job and spec — so they travel as one packed ``RunBatch`` and the
runner measures every model in one launch, each with its own loads, warm-up and samples.

The budget: a packed launch must finish inside the batch timeout the agent gives every
launch (``RunSpec.timeout_s``; the runner itself gets ``RUNNER_BUDGET_SHARE`` of it). Each
probe's time is estimated *conservatively* and the pack is filled up to half the timeout,
so an estimate that is off by 2× still fits:

    estimate = MODEL_FIXED_S                               (push, compile, cold + warm load)
             + settings × (1 + rounds × warmup + iterations)   predictions
               × max(``probe_prediction_ms`` × repeat,           (lifted probes: × copies)
                     FLOPs ÷ CONSERVATIVE_FLOPS_PER_MS)          (a heavy op)

``probe_prediction_ms`` (``ANEFARM_PROBE_PREDICTION_MS``, 20 ms) is far above what a probe
takes (the samples' single-op probes: 0.02–0.26 ms a prediction on the simulated A12, their
16-copy lifts ≤ 3.2 ms, on the slowest setting); an op heavy enough to take longer is
charged by its FLOPs at a quarter of the slowest CPU's rate: a conservative cost, not a
measurement. A pack also holds at
most ``probe_pack_max`` models (and never one model twice). ``ANEFARM_PROBE_PACKING=0``
turns packing off: one launch per probe, as before.

A packed launch the runner crashes is split in halves and launched again by the agent
(agents/batch.py), so at most log2(n) more launches find the one probe that crashes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from orchestrator.bisect.placement import LIFT
from orchestrator.protocol import MAX_PACKED, RunBatch, RunPurpose, RunSpec
from orchestrator.protocol.transport import Sent
from orchestrator.settings import Settings

# Push over USB 2 and on-device compile of a one-op model, plus its cold and warm loads
# (the behaviour model charges ≈ 0.1–0.3 s for these on a probe; assumption, rounded up).
MODEL_FIXED_S = 1.0
# What the runner does per setting by default (RunnerManifest.rounds): warm-up every slot.
ROUNDS = 5
# Share of the batch timeout a pack's estimate may fill (the estimate may be 2× off).
BUDGET_SHARE = 0.5
# A probe with a heavy op (a full-size convolution) costs more than the fixed 20 ms: its
# FLOPs at a quarter of the slowest CPU the farm has (A12, ≈ 20 GFLOP/s effective in the
# behaviour model) — 5 GFLOP/s, 5e6 FLOPs a millisecond.
CONSERVATIVE_FLOPS_PER_MS = 5e6


def probe_estimate_s(
    spec: RunSpec, *, repeat: int, prediction_ms: float, flops: float | None = None
) -> float:
    """A conservative estimate of one probe's time inside a launch (module docstring):
    ``flops`` is the probe model's own (its copies included), when known."""
    predictions = len(spec.compute_units) * (1 + ROUNDS * spec.warmup + spec.iterations)
    each_ms = max(prediction_ms * max(repeat, 1), (flops or 0.0) / CONSERVATIVE_FLOPS_PER_MS)
    return MODEL_FIXED_S + predictions * each_ms / 1000


def budget_s(spec: RunSpec) -> float:
    return spec.timeout_s * BUDGET_SHARE


def pack(
    batches: list[RunBatch],
    *,
    settings: Settings,
    repeat: int,
    flops: Mapping[str, float | None] | None = None,
) -> list[RunBatch]:
    """The batches of one parent's probes (same spec, device, job) packed greedily in
    order; each pack's estimate within the budget (a probe that alone exceeds it goes
    alone). ``flops``: each probe model's FLOPs by sha256, when known. Packing off, or one
    batch: the batches as they are."""
    if not settings.probe_packing or len(batches) < 2:
        return list(batches)
    limit = max(2, min(settings.probe_pack_max, MAX_PACKED))
    pending = list(batches)
    packs: list[RunBatch] = []
    known = flops or {}

    def estimate(batch: RunBatch) -> float:
        return probe_estimate_s(batch.spec, repeat=repeat, flops=known.get(batch.model.sha256),
                                prediction_ms=settings.probe_prediction_ms)  # fmt: skip

    while pending:
        first = pending.pop(0)
        group, total, shas, rest = [first], estimate(first), {first.model.sha256}, []
        for batch in pending:
            each = estimate(batch)
            fits = total + each <= budget_s(first.spec) and len(group) < limit
            if fits and batch.model.sha256 not in shas and _same_launch(first, batch):
                group.append(batch)
                shas.add(batch.model.sha256)
                total += each
            else:
                rest.append(batch)
        pending = rest
        packs.append(RunBatch.pack(group))
    return packs


def repack(sent: Sequence[Sent], *, settings: Settings) -> list[tuple[RunBatch, float | None]]:
    """Batches one packed launch's results planned (lifted probes, as each single-op probe
    came back), packed where they may share a launch: probe batches due now, estimated as
    lifted (the dearer). Everything else — user work, retries with a backoff — as it was."""
    out: list[tuple[RunBatch, float | None]] = []
    probes: list[RunBatch] = []
    for item in sent:
        due_probe = item.batch.purpose is RunPurpose.PROBE and item.batch.packed is None
        if due_probe and item.countdown is None:
            probes.append(item.batch)
        else:
            out.append((item.batch, item.countdown))
    return out + [(b, None) for b in pack(probes, settings=settings, repeat=LIFT)]


def _same_launch(a: RunBatch, b: RunBatch) -> bool:
    """Runs that may share a launch: everything but run, attempt, model and inputs equal."""
    return (a.job_id, a.device_class, a.pinned_udid, a.spec, a.purpose, a.parent_run_id) == (
        b.job_id, b.device_class, b.pinned_udid, b.spec, b.purpose, b.parent_run_id
    )  # fmt: skip
