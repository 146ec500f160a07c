"""The tables of ``anefarm inspect`` and ``anefarm lint``, sized for the screen they land on.

On a wide screen (``WIDE`` columns or more) each fact has its own column, as always. On a
narrower one — 80 columns, or a pipe, which rich reads as 80 — nine or seven columns each
got a few characters and every name, shape and reason was cut to ``expand…`` or broken
into one word per line. There the tables keep the short facts in columns and put the long
ones where they can be read:

- ``inspect``: one row per op with its number, name, type (its kind under it when that
  differs), shapes in and ``→ out`` written ``1×16×32×32``, MFLOPs and weight bytes; its
  parameters, compacted (``pad=[0,0,0,0]``), dim under the name. Long names
  and shapes wrap (``fold``) instead of being cut: the whole name stays on screen.
- ``lint``: one row per finding with chip, op, rule, expected unit and confidence; each
  distinct reason and fix once under the table, wrapped to the width, naming its rule.

``--json`` is built elsewhere and never goes through this module.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rich import box
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from orchestrator.modelkit.inventory import LintFinding, ModelInventory, OpInfo, TensorInfo

WIDE = 120  # the columns at which the one-fact-per-column tables fit


def _shape(tensors: Sequence[TensorInfo], sep: str = ", ") -> str:
    if sep == ", ":  # the wide table's form, as it always was
        return sep.join(str(t.shape) if t.shape else "unknown" for t in tensors)
    return sep.join("×".join(map(str, t.shape)) if t.shape else "?" for t in tensors)


def _params(op: OpInfo, compact: bool) -> str:
    items = [(k, v) for k, v in op.params.items() if k != "weight_shape"]
    if not compact:
        return ", ".join(f"{k}={v}" for k, v in items)[:60]
    return " ".join(f"{k}={v}".replace(", ", ",") for k, v in items)


def _mflops(op: OpInfo) -> str:
    return "unknown" if op.flops is None else f"{op.flops / 1e6:.2f}"


def ops_table(inventory: ModelInventory, width: int) -> Table:
    """The op inventory as a table that fits ``width`` columns."""
    if width >= WIDE:
        table = Table("#", "name", "type", "kind", "in", "out", "params", "MFLOPs", "weights")
        for op in inventory.ops:
            table.add_row(str(op.index), op.name, op.type, op.kind, _shape(op.inputs),
                          _shape(op.outputs), _params(op, False), _mflops(op),
                          f"{op.weight_bytes:,}")  # fmt: skip
        return table
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=False)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("op · params", overflow="fold")
    table.add_column("type", overflow="fold")
    table.add_column("in → out", overflow="fold")
    table.add_column("MFLOPs", justify="right", no_wrap=True)
    table.add_column("weights", justify="right", no_wrap=True)
    for op in inventory.ops:
        cell = Text(op.name)
        params = _params(op, True)
        if params:
            cell.append("\n" + params, style="dim")
        kind = Text(op.type)
        if op.kind not in ("", op.type):
            kind.append("\n" + op.kind, style="dim")
        # One input a line: a matmul's two shapes side by side would narrow the name.
        shapes = _shape(op.inputs, "\n") + "\n→ " + _shape(op.outputs, "\n→ ")
        table.add_row(str(op.index), cell, kind, shapes, _mflops(op), f"{op.weight_bytes:,}")
    return table


def lint_renderables(
    name: str, warnings: Sequence[LintFinding], width: int,
    confidence: Callable[[LintFinding], str | None],
) -> list[RenderableType]:  # fmt: skip
    """The prediction table (and, when narrow, its reasons and fixes under it)."""
    title = f"prediction for {name}"
    if width >= WIDE:
        table = Table("chip", "op", "rule", "expected", "confidence", "reason", "fix", title=title)
        for f in warnings:
            table.add_row(f.chip, f"{f.op_name} ({f.op_type})", f.rule_id, f.expected_unit,
                          confidence(f) or "unknown", f.reason, f.fix)  # fmt: skip
        return [table]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title=title)
    table.add_column("chip", no_wrap=True)
    table.add_column("op (type)", overflow="fold")
    table.add_column("rule", overflow="fold")
    table.add_column("expected", no_wrap=True)
    table.add_column("confidence", no_wrap=True)
    explained: dict[tuple[str, str, str], list[str]] = {}
    for f in warnings:
        table.add_row(f.chip, f"{f.op_name} ({f.op_type})", f.rule_id, f.expected_unit,
                      confidence(f) or "unknown")  # fmt: skip
        chips = explained.setdefault((f.rule_id, f.reason, f.fix), [])
        if f.chip not in chips:
            chips.append(f.chip)
    out: list[RenderableType] = [table]
    for (rule, reason, fix), chips in explained.items():
        head = f"{rule} ({', '.join(chips)}): "
        # Whole words a line (no break inside "batch-to-space"): a reader can search them.
        wrap = textwrap.TextWrapper(width=width, subsequent_indent="    ", break_on_hyphens=False)
        lines = wrap.wrap(head + reason) + wrap.wrap("  fix: " + fix)
        out.append(Text("\n".join(lines)))
    return out
