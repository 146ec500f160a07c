"""Static ANE lint: per op and per chip, a *prediction* of what will not run on the ANE,
with the rule, the reason, its public source and a concrete fix.

Rules are data: add a ``Rule`` to ``RULES`` (with a test that triggers it and one that
does not; docs/lint-rules.md explains the table). Sources are in docs/ane-facts.md;
every rule is a report from the field, not Apple's word — real devices have the last word.
Each rule says how far its reports carry (``confidence``) and whether it decides placement
(``warning``: lint exits 3) or only points at a pattern nearly every model of a kind has
(``note``: shown by ``anefarm lint``, never a prediction off the ANE).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from orchestrator import catalog
from orchestrator.catalog.osversion import release
from orchestrator.errors import UsageError
from orchestrator.modelkit.inventory import LintFinding, ModelInventory, OpInfo

A12_FAMILY = frozenset({"A12", "A12X", "A12Z"})
ALL_CHIPS = frozenset(catalog.CHIPS)
IPHONE_CHIPS = frozenset(d.chip for d in catalog.DEVICES.values() if d.family == "iPhone")
HOLLANCE = "hollance/neural-engine docs/unsupported-layers.md"
GIGABYTE = 1024**3
WARNING, NOTE = "warning", "note"
CONFIDENCES = ("high", "medium", "low")
# NHWC → NCHW and back: what a TensorFlow conversion puts at its inputs and outputs.
LAYOUT_PERMS = ([0, 3, 1, 2], [0, 2, 3, 1])
# An op rule looks at one op (and may look at the model around it); a model rule gets
# op=None once per chip.
Predicate = Callable[[OpInfo | None, ModelInventory], bool]


@dataclass(frozen=True)
class Rule:
    rule_id: str
    chips: frozenset[str]
    predicate: Predicate
    unit: str  # where Core ML is expected to run it instead: gpu | cpu
    reason: str
    source: str
    fix: str
    # high: the vendor or several independent reports; medium: one clear report or a
    # documented limit; low: a single report or a heuristic, often wrong on a given model.
    confidence: str
    level: str = "op"  # op | model
    severity: str = WARNING  # warning: predicts placement (exit 3) | note: shown only
    os_min: tuple[int, ...] | None = None  # applies from this OS version (None: any)
    os_max: tuple[int, ...] | None = None  # up to and including this version (None: any)

    def applies(self, chip: str, os_version: tuple[int, ...] | None) -> bool:
        if chip not in self.chips:
            return False
        if os_version is None:
            return True
        low_ok = self.os_min is None or os_version >= self.os_min
        return low_ok and (self.os_max is None or os_version <= self.os_max)


def _ints(value: object) -> list[int]:
    if isinstance(value, list):
        return [int(v) for v in value if isinstance(v, int | float)]
    return [int(value)] if isinstance(value, int | float) else []


def _dilated(op: OpInfo | None, _: ModelInventory) -> bool:
    return (
        op is not None
        and op.kind == "conv"
        and any(d > 1 for d in _ints(op.params.get("dilations")))
    )


def _big_pool(op: OpInfo | None, _: ModelInventory) -> bool:
    if op is None or op.kind != "pool" or op.params.get("global"):
        return False
    kernel = _ints(op.params.get("kernel_sizes", op.params.get("kernel")))
    stride = _ints(op.params.get("strides"))
    return any(k > 13 for k in kernel) or any(s > 2 for s in stride)


def _big_upsample(op: OpInfo | None, _: ModelInventory) -> bool:
    if op is None or op.kind != "upsample":
        return False
    factors = (
        _ints(op.params.get("scale_factors"))
        + _ints(op.params.get("scale_factor_height"))
        + _ints(op.params.get("scale_factor_width"))
    )
    if not factors and op.inputs and op.outputs and op.inputs[0].shape and op.outputs[0].shape:
        pairs = zip(op.inputs[0].shape[-2:], op.outputs[0].shape[-2:], strict=True)
        factors = [o // max(1, i) for i, o in pairs]
    return any(f > 2 for f in factors)


# The last model's edge tensors: lint asks once per transpose and chip. One reference,
# read and replaced whole, so concurrent lints at worst compute it again.
Edges = tuple[frozenset[str], frozenset[str]]
_edge_cache: list[tuple[ModelInventory, Edges] | None] = [None]


def _edge_tensors(model: ModelInventory) -> Edges:
    """Names of the model's inputs, and of its outputs, with the casts next to them: an ML
    program in float16 casts its float32 inputs before the first op and its outputs after
    the last, so an input transpose reads ``x_to_fp16``, not ``x``."""
    cached = _edge_cache[0]
    if cached is not None and cached[0] is model:
        return cached[1]
    inputs = {f.name for f in model.inputs}
    for op in model.ops:
        if op.kind == "cast" and op.inputs and op.inputs[0].name in inputs:
            inputs.update(t.name for t in op.outputs)
    outputs = {f.name for f in model.outputs}
    for op in reversed(model.ops):
        if op.kind == "cast" and op.inputs and any(t.name in outputs for t in op.outputs):
            outputs.add(op.inputs[0].name)
    edges = (frozenset(inputs), frozenset(outputs))
    _edge_cache[0] = (model, edges)
    return edges


def _layout_transpose(op: OpInfo | None, model: ModelInventory) -> bool:
    # The NHWC → NCHW transpose at the input of every TensorFlow-converted model (and its
    # inverse at the output): flagging it would make every such model fail lint on A12.
    if op is None or op.kind != "transpose" or _ints(op.params.get("perm")) not in LAYOUT_PERMS:
        return False
    ins, outs = _edge_tensors(model)
    return any(t.name in ins for t in op.inputs) or any(t.name in outs for t in op.outputs)


def _inner_transpose(op: OpInfo | None, model: ModelInventory) -> bool:
    return op is not None and op.kind == "transpose" and not _layout_transpose(op, model)


def _linear_layout(op: OpInfo | None, model: ModelInventory) -> bool:
    # Attention written with linear layers on (B, S, C) tensors instead of 1×1 convs on
    # channels-first (B, C, 1, S): apple/ml-ane-transformers.
    if op is None or op.kind not in {"linear", "matmul"}:
        return False
    rank3 = any(t.shape is not None and len(t.shape) == 3 for t in op.inputs)
    return rank3 and any(o.kind == "softmax" for o in model.ops)


def _broadcast(op: OpInfo | None, _: ModelInventory) -> bool:
    # C×H×W × C×1×1 style: two variable operands of equal rank, one with a size-1 axis the
    # other has larger. Constants (biases, scales) are folded by Core ML and not counted.
    if op is None or op.kind != "elementwise" or len(op.inputs) < 2:
        return False
    a, b = op.inputs[0].shape, op.inputs[1].shape
    if a is None or b is None or len(a) != len(b) or math.prod(a) <= 1 or math.prod(b) <= 1:
        return False
    return a != b and all(x == y or 1 in (x, y) for x, y in zip(a, b, strict=True))


def _unsupported_kind(op: OpInfo | None, model: ModelInventory) -> bool:
    # A neural-network layer kind outside modelkit's vocabulary: no ANE report covers it
    # (the ND / broadcastable layers of Core ML 3 mostly land here).
    return op is not None and model.model_type != "mlProgram" and op.kind == "other"


def _float32(op: OpInfo | None, model: ModelInventory) -> bool:
    return model.model_type == "mlProgram" and model.compute_precision == "float32"


def _flexible(op: OpInfo | None, model: ModelInventory) -> bool:
    return any(f.flexible == "range" for f in model.inputs)


def _over_1gb(op: OpInfo | None, model: ModelInventory) -> bool:
    return model.size_bytes > GIGABYTE


def _fp16_enumerated(op: OpInfo | None, model: ModelInventory) -> bool:
    return any(f.flexible == "enumerated" and f.dtype == "FLOAT16" for f in model.inputs)


RULES: list[Rule] = [
    Rule("dilated-conv", A12_FAMILY, _dilated, "gpu",
         "dilated (atrous) convolution is not taken by the A12-generation ANE; Core ML runs it on the GPU",
         "the original write-up (10×10 conv, dilation 4, A12); " + HOLLANCE,
         "replace with stacked non-dilated convolutions or space-to-batch / batch-to-space around a plain convolution",
         confidence="medium"),
    Rule("recurrent-layer", ALL_CHIPS, lambda op, _: op is not None and op.kind == "rnn", "cpu",
         "LSTM / GRU / RNN layers do not run on the ANE",
         "apple/coremltools issue 1780 (Apple engineer); issue 337 (iPhone XS)",
         "expect CPU; consider a convolutional alternative (e.g. temporal 1-D convolutions) or attention",
         confidence="high"),
    Rule("gather-embedding", ALL_CHIPS,
         lambda op, _: op is not None and op.kind in {"gather", "embedding"}, "cpu",
         "gather and embedding lookups are not ANE operations", HOLLANCE + "; apple/ml-ane-transformers",
         "move the lookup out of the model, or express it as a one-hot × matrix product", confidence="medium"),
    Rule("large-pool", ALL_CHIPS, _big_pool, "gpu",
         "pooling with a kernel larger than 13 or a stride larger than 2 is not taken by the ANE", HOLLANCE,
         "split it into smaller pools (e.g. two 8×8 pools) or use a strided convolution", confidence="medium"),
    Rule("large-upsample", ALL_CHIPS, _big_upsample, "gpu",
         "upsampling by more than 2× is not taken by the ANE", HOLLANCE,
         "chain 2× upsampling layers instead of one large factor", confidence="medium"),
    Rule("broadcast", ALL_CHIPS, _broadcast, "gpu",
         "element-wise ops that broadcast two tensors (e.g. C×H×W × C×1×1) are reported off the ANE",
         HOLLANCE, "tile the smaller operand to the full shape, or fold the scale into a convolution",
         confidence="low"),
    Rule("linear-attention-layout", ALL_CHIPS, _linear_layout, "gpu",
         "attention with linear layers on (B, S, C) tensors and transposes maps poorly to the ANE",
         "apple/ml-ane-transformers",
         "use the channels-first (B, C, 1, S) layout with 1×1 convolutions and avoid transposes",
         confidence="low"),
    Rule("transpose-a12", A12_FAMILY, _inner_transpose, "gpu",
         "A12/A12X report 'Transpose unit is not supported' for layouts the A15 runs",
         "ggerganov/whisper.cpp PR 1716", "avoid transposes: keep tensors in the (B, C, 1, S) layout",
         confidence="low"),
    Rule("transpose-a12-layout", A12_FAMILY, _layout_transpose, "gpu",
         "a layout transpose (NHWC ↔ NCHW) at a model input or output, as every TensorFlow conversion has;"
         " the A12 transpose report may cover it, but at most this one op at the edge moves",
         "ggerganov/whisper.cpp PR 1716 (for transposes in general)",
         "feed channels-first (NCHW) data, or convert with the input declared channels-first",
         confidence="low", severity=NOTE),
    Rule("custom-layer", ALL_CHIPS, lambda op, _: op is not None and op.kind == "custom", "cpu",
         "custom layers run on the CPU", HOLLANCE, "replace the custom layer with built-in layers",
         confidence="high"),
    Rule("unsupported-layer", ALL_CHIPS, _unsupported_kind, "cpu",
         "a neural-network layer kind with no ANE report (e.g. the ND / broadcastable layers of Core ML 3)",
         HOLLANCE, "re-convert as an ML program, or rewrite the layer with convolutions and element-wise ops",
         confidence="low"),
    Rule("float32-precision", ALL_CHIPS, _float32, "gpu",
         "the program computes in float32; the ANE computes in float16 only",
         "coremltools docs (compute precision); ane-facts.md",
         "convert with compute_precision=ct.precision.FLOAT16 (check accuracy, e.g. epsilons ≥ 1e-5)",
         confidence="high", level="model"),
    Rule("flexible-shape", ALL_CHIPS, _flexible, "gpu",
         "fully flexible (range) input shapes keep work off the ANE",
         "coremltools docs flexible-inputs.md, faqs.md",
         "use enumerated shapes (ct.EnumeratedShapes); on iOS 17.4+ set ReshapeFrequency=Infrequent",
         confidence="medium", level="model"),
    Rule("model-over-1gb", IPHONE_CHIPS, _over_1gb, "gpu",
         "models over ~1 GB do not run on the ANE on iPhone", "coremltools docs mlmodel-utilities.md",
         "quantize or palettize the weights, or split the model", confidence="medium", level="model"),
    Rule("fp16-enumerated-input-a13", frozenset({"A13"}), _fp16_enumerated, "cpu",
         "a float16 input with enumerated shapes was reported to run on the CPU only on A13",
         "Apple developer forums thread 763368",
         "declare the input as float32 (convert inside the model) or use a fixed shape",
         confidence="low", level="model"),
]  # fmt: skip
RULES_BY_ID = {rule.rule_id: rule for rule in RULES}


def parse_os(version: str) -> tuple[int, ...]:
    """'iOS 17.4' / '17.4' → (17, 4); bad text is a usage error."""
    text = version.strip().lower().removeprefix("ipados").removeprefix("ios").strip()
    try:
        return release(text)
    except ValueError:
        raise UsageError(f"cannot read OS version {version!r}", hint="write it like 17.4") from None


def _finding(rule: Rule, chip: str, op: OpInfo | None, model: ModelInventory) -> LintFinding:
    if op is None:
        return LintFinding(rule.rule_id, chip, None, "(model)", model.model_type, rule.unit,
                           rule.reason, rule.source, rule.fix, severity=rule.severity)  # fmt: skip
    return LintFinding(rule.rule_id, chip, op.index, op.name, op.type, rule.unit,
                       rule.reason, rule.source, rule.fix, severity=rule.severity)  # fmt: skip


def confidence(finding: LintFinding) -> str | None:
    """The confidence of the rule behind a finding (None: a rule this version lacks)."""
    rule = RULES_BY_ID.get(finding.rule_id)
    return rule.confidence if rule else None


def lint(
    model: ModelInventory,
    chips: Sequence[str] | None = None,
    *,
    os_version: str | None = None,
    notes: bool = False,
) -> list[LintFinding]:
    """Findings for the chips asked (names or comma lists; default: every chip of the
    catalog); ``os_version`` drops rules that do not apply to it (default: all rules).
    Notes come only when asked: what is stored with a model and read by the verdict and
    the bisection are the findings that predict placement."""
    wanted = [c.name for c in catalog.chips(chips)] if chips else sorted(ALL_CHIPS)
    version = parse_os(os_version) if os_version else None
    by_chip = {
        chip: [r for r in RULES if r.applies(chip, version) and (notes or r.severity != NOTE)]
        for chip in wanted
    }
    # A predicate does not depend on the chip: each op is judged once per rule, not once
    # per rule and chip (12 chips: most of lint's time on a 1,000-op model).
    used = {id(r) for rules in by_chip.values() for r in rules}
    op_rules = [r for r in RULES if r.level == "op" and id(r) in used]
    hits = [(op, found) for op in model.ops if (found := [r for r in op_rules if r.predicate(op, model)])]  # fmt: skip
    findings: list[LintFinding] = []
    for chip, rules in by_chip.items():
        applies = {id(r) for r in rules}
        for op, found in hits:
            findings += [_finding(rule, chip, op, model) for rule in found if id(rule) in applies]
        for rule in rules:
            if rule.level == "model" and rule.predicate(None, model):
                findings.append(_finding(rule, chip, None, model))
    return findings
