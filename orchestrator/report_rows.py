"""The report as typed models: one place that says what a report row holds.

``report.build_report`` fills them from the database; the JSON form is
``Report.to_json()`` (field order is key order: the JSON is a user-facing contract, see
tests/foundation/test_report_rows.py), and ``render`` draws the table and the CSV from
the same models. A new column is one field here, plus where it is filled
(``report.report_row``) and, if the table or CSV show it, the renderer.

Measured numbers are ``int | float``: pydantic would turn an int into a float (``3`` into
``3.0``), and the JSON must print what was stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

Number = int | float


class _Shape(BaseModel):
    # Rows are built in one place; a misspelt key is a bug, not an extra column.
    model_config = ConfigDict(extra="forbid")


class Latency(_Shape):
    """One compute-units setting's statistics, in ms."""

    p50: Number | None = None
    p90: Number | None = None
    p99: Number | None = None
    mean: Number | None = None
    std: Number | None = None
    min: Number | None = None
    max: Number | None = None
    count: int | None = None
    first_prediction_ms: Number | None = None


class OffAneOp(_Shape):
    """An op the verdict finds off the ANE (unit: the probe's, when a probe placed it)."""

    name: str | None = None
    type: str | None = None
    unit: str | None = None
    reason: str | None = None
    fix: str | None = None
    source: str | None = None
    # After context search (docs/bisection.md): cause or carried, and the cause carrying it.
    role: str | None = None
    carried_by: str | None = None


class BisectedOp(_Shape):
    """One op of a bisected run: where the probe, the compute plan and lint put it."""

    index: int
    name: str
    type: str
    by_probe: str
    probe_status: str | None = None
    confidence: Number | None = None
    probe_reason: str | None = None
    by_plan: str | None = None
    by_lint: str | None = None
    lint_rules: list[str] = []
    disagree: bool = False
    # After context search: off the ANE as a cause or carried (by ``carried_by``) in the model.
    role: str | None = None
    carried_by: str | None = None


class Bisection(_Shape):
    """A user run's bisection (``bisect.report.bisection``)."""

    state: str
    trigger: str | None = None
    why: str | None = None
    verdict_before: str | None = None
    error: str | None = None
    probe_runs: int = 0
    signatures: int = 0
    reused: int | None = None
    inconclusive: int | None = None
    ops: list[BisectedOp] = []


class LastNight(_Shape):
    """A sweep night's row: the same series' p50 by compute-units setting on the sweep's
    previous night that measured it (same device class, simulated-or-real)."""

    night: str  # its logical date
    p50_ms: dict[str, Number] = {}


class ReportRow(_Shape):
    """One user run: a model on a device class, with its verdict and measurements."""

    run: str | None = None
    model: str
    sha256: str | None = None
    device_class: str
    device_name: str | None = None
    chip: str | None = None
    os_version: str | None = None
    os_build: str | None = None
    udid: str | None = None
    # The hottest state the runner reported (nominal | fair | serious | critical: the last
    # two throttle); None: not reported (no runner result, or stored before it was kept).
    thermal_state: str | None = None
    # None: the run has not reported yet, so it is not called real without evidence.
    simulated: bool | None = None
    status: str
    attempts: int | None = None
    verdict: str | None = None
    ane_share: Number | None = None
    plan_available: bool | None = None
    plan_timing_disagree: bool = False
    reasons: list[str] = []
    timing: list[Any] = []
    latency_ms: dict[str, Latency] = {}
    setting_errors: dict[str, str] = {}
    speedup_all_vs_cpu_only: Number | None = None
    cold_load_ms: Number | None = None
    # What the cold load followed (fresh_compile, fresh_process, warm_cache; None before it
    # was recorded): two cold loads compare only when this is the same.
    cold_load_provenance: str | None = None
    warm_load_ms: Number | None = None
    ops_off_ane: list[OffAneOp] = []
    bisection: Bisection | None = None
    error: str | None = None
    # A run for a class the farm had no live device of waits (not queued) since then.
    waiting_since: str | None = None
    # A sweep night's run (orchestrator.sweeps): its series, and last night's medians.
    series: str | None = None
    last_night: LastNight | None = None

    def probe_units(self) -> dict[str, str]:
        """Op name → unit by probe: the verdict stores a probe's "GPU or CPU" as unknown,
        the bisection keeps it."""
        return {op.name: op.by_probe for op in self.bisection.ops} if self.bisection else {}

    def unit_of(self, op: OffAneOp) -> str | None:
        """Where an op off the ANE runs, as the text says it (a probe's own word)."""
        if op.source == "probe" and op.name is not None:
            return self.probe_units().get(op.name, op.unit)
        return op.unit


class ProbeRow(_Shape):
    """One single-op probe run of the job's bisection."""

    run: str
    parent_run: str | None = None
    signature: str | None = None
    op_type: str | None = None
    ops: list[str] = []
    repeat: int | None = None
    device_class: str
    os_version: str | None = None
    simulated: bool | None = None
    status: str
    placement: str | None = None
    unit: str | None = None
    confidence: Number | None = None
    reason: str | None = None


class Report(_Shape):
    """A job's report: its rows, the verdict matrix built from them, and its probe runs."""

    job: str
    status: str
    created_at: str | None = None
    simulated: bool = False
    rows: list[ReportRow] = []
    # The verdict of every model on every device class (``render.matrix.build_matrix``).
    matrix: dict[str, Any] | None = None
    probes: list[ProbeRow] = []

    @classmethod
    def of(cls, report: Report | Mapping[str, Any]) -> Report:
        """A report as given to a renderer: the model, or its JSON form (a dict)."""
        return report if isinstance(report, Report) else cls.model_validate(report)

    def to_json(self) -> dict[str, Any]:
        """The JSON form: every key, in field order."""
        return self.model_dump(mode="json")
