"""Static lint findings as verdict evidence: matched to the ops the device places off the ANE
as their probable reason and fix, or listed on their own as a prediction when no plan exists.

Findings are read through ``LintLike`` so the verdict does not import modelkit (which pulls
in coremltools); ``orchestrator.modelkit.LintFinding`` and ingest's stored view both fit it.
Only findings that predict placement count: a ``note`` (e.g. the layout transpose at a
TensorFlow model's input) is never an op off the ANE, nor a reason for one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from orchestrator.protocol import ComputeUnit, EvidenceSource, OpOffAne, OpPlan

TEXT_LIMIT = 4000  # protocol.ShortText
NAME_LIMIT, TYPE_LIMIT = 512, 128


class LintLike(Protocol):
    """What the verdict reads from a lint finding (read-only, so frozen dataclasses fit)."""

    @property
    def op_index(self) -> int | None: ...
    @property
    def op_name(self) -> str: ...
    @property
    def op_type(self) -> str: ...
    @property
    def chip(self) -> str: ...
    @property
    def rule_id(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def fix(self) -> str: ...
    @property
    def expected_unit(self) -> str: ...


def predicts_placement(finding: LintLike) -> bool:
    """False for a note. Findings stored before severities existed, and fakes without the
    attribute, are warnings: that is what every finding was then."""
    return str(getattr(finding, "severity", "warning")) != "note"


def clip(text: str, limit: int = TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def expected_unit(finding: LintLike) -> ComputeUnit | Literal["unknown"]:
    """The unit lint expects the op on; a finding never predicts the ANE itself."""
    unit = finding.expected_unit.strip().lower()
    if unit == "gpu":
        return ComputeUnit.GPU
    if unit == "cpu":
        return ComputeUnit.CPU
    return "unknown"


class LintBook:
    """The findings for one chip, looked up by op.

    Matching: by op name first (stable across the inventory and the runner's plan), then by
    index only when the op type agrees too, because the runner may number ops differently.
    """

    def __init__(self, findings: Sequence[LintLike], chip: str) -> None:
        wanted = chip.strip().casefold()
        mine = [
            f for f in findings if f.chip.strip().casefold() == wanted and predicts_placement(f)
        ]
        self.model_level = [f for f in mine if f.op_index is None]
        self.op_level = [f for f in mine if f.op_index is not None]
        self._by_name: dict[str, list[LintLike]] = {}
        self._by_index: dict[int, list[LintLike]] = {}
        for f in self.op_level:
            self._by_name.setdefault(f.op_name, []).append(f)
            if f.op_index is not None:
                self._by_index.setdefault(f.op_index, []).append(f)

    def for_op(self, op: OpPlan) -> list[LintLike]:
        return self.lookup(op.name, op.index, op.op_type)

    def lookup(self, name: str, index: int, op_type: str) -> list[LintLike]:
        named = self._by_name.get(name)
        if named:
            return named
        return [f for f in self._by_index.get(index, []) if f.op_type == op_type]

    def predicted_ops(self) -> list[OpOffAne]:
        """Op-level findings as ops off the ANE, by static prediction (one entry per op)."""
        grouped: dict[tuple[str, str], list[LintLike]] = {}
        for f in self.op_level:
            grouped.setdefault((f.op_name, f.op_type), []).append(f)
        return [
            OpOffAne(
                name=clip(name, NAME_LIMIT),
                type=clip(op_type, TYPE_LIMIT),
                unit=expected_unit(group[0]),
                reason=joined_reasons(group),
                fix=joined_fixes(group),
                source=EvidenceSource.LINT,
            )
            for (name, op_type), group in grouped.items()
        ]

    def model_notes(self) -> list[str]:
        return [
            f"static prediction for the whole model ({f.rule_id}): {f.reason}; fix: {f.fix}"
            for f in self.model_level
        ]


def joined_reasons(findings: Sequence[LintLike]) -> str:
    return clip("; ".join(f"{f.reason} ({f.rule_id})" for f in findings))


def joined_fixes(findings: Sequence[LintLike]) -> str:
    return clip("; ".join(dict.fromkeys(f.fix for f in findings)))
