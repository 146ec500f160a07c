"""Static ANE lint: per op and per chip, a *prediction* of what will not run on the ANE,
with the rule, the reason, its public source and a concrete fix.

Rules are data: add a ``Rule`` to ``RULES`` (with a test that triggers it and one that
does not). Sources are in shared/docs/ane-facts.md; every rule is a report from the
field, not Apple's word — real devices have the last word.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from orchestrator import catalog
from orchestrator.modelkit.inventory import LintFinding, ModelInventory, OpInfo

A12_FAMILY = frozenset({"A12", "A12X", "A12Z"})
ALL_CHIPS = frozenset(catalog.CHIPS)
HOLLANCE = "hollance/neural-engine docs/unsupported-layers.md"
GIGABYTE = 1024**3


def _ints(value: object) -> list[int]:
    if isinstance(value, list):
        return [int(v) for v in value if isinstance(v, int | float)]
    return [int(value)] if isinstance(value, int | float) else []


def _dilated(op: OpInfo, _: ModelInventory) -> bool:
    return op.kind == "conv" and any(d > 1 for d in _ints(op.params.get("dilations")))


def _big_pool(op: OpInfo, _: ModelInventory) -> bool:
    kernel = _ints(op.params.get("kernel_sizes", op.params.get("kernel")))
    stride = _ints(op.params.get("strides"))
    return op.kind == "pool" and (any(k > 13 for k in kernel) or any(s > 2 for s in stride))


def _big_upsample(op: OpInfo, _: ModelInventory) -> bool:
    factors = (
        _ints(op.params.get("scale_factors"))
        + _ints(op.params.get("scale_factor_height"))
        + _ints(op.params.get("scale_factor_width"))
    )
    if op.kind != "upsample":
        return False
    if not factors and op.inputs and op.outputs and op.inputs[0].shape and op.outputs[0].shape:
        factors = [
            o // max(1, i)
            for i, o in zip(op.inputs[0].shape[-2:], op.outputs[0].shape[-2:], strict=True)
        ]
    return any(f > 2 for f in factors)


def _linear_layout(op: OpInfo, model: ModelInventory) -> bool:
    # Attention written with linear layers on (B, S, C) tensors instead of 1×1 convs on
    # channels-first (B, C, 1, S): apple/ml-ane-transformers.
    rank3 = any(t.shape is not None and len(t.shape) == 3 for t in op.inputs)
    has_attention = any(o.kind == "softmax" for o in model.ops)
    return op.kind in {"linear", "matmul"} and rank3 and has_attention


@dataclass(frozen=True)
class Rule:
    rule_id: str
    chips: frozenset[str]
    predicate: Callable[[OpInfo, ModelInventory], bool]
    unit: str
    reason: str
    source: str
    fix: str


RULES: list[Rule] = [
    Rule("dilated-conv", A12_FAMILY, _dilated, "gpu",
         "dilated (atrous) convolution is not taken by the A12-generation ANE; Core ML runs it on the GPU",
         "the original write-up (10×10 conv, dilation 4, A12); " + HOLLANCE,
         "replace with stacked non-dilated convolutions or space-to-batch / batch-to-space around a plain convolution"),
    Rule("recurrent-layer", ALL_CHIPS, lambda op, _: op.kind == "rnn", "cpu",
         "LSTM / GRU / RNN layers do not run on the ANE",
         "apple/coremltools issue 1780 (Apple engineer); issue 337 (iPhone XS)",
         "expect CPU; consider a convolutional or attention alternative (e.g. temporal 1-D convolutions)"),
    Rule("gather-embedding", ALL_CHIPS, lambda op, _: op.kind in {"gather", "embedding"}, "cpu",
         "gather and embedding lookups are not ANE operations", HOLLANCE + "; apple/ml-ane-transformers",
         "move the lookup out of the model, or express it as a one-hot × matrix product"),
    Rule("large-pool", ALL_CHIPS, _big_pool, "gpu",
         "pooling with a kernel larger than 13 or a stride larger than 2 is not taken by the ANE", HOLLANCE,
         "split it into smaller pools (e.g. two 8×8 pools) or use a strided convolution"),
    Rule("large-upsample", ALL_CHIPS, _big_upsample, "gpu",
         "upsampling by more than 2× is not taken by the ANE", HOLLANCE,
         "chain 2× upsampling layers instead of one large factor"),
    Rule("linear-attention-layout", ALL_CHIPS, _linear_layout, "gpu",
         "attention with linear layers on (B, S, C) tensors and transposes maps poorly to the ANE",
         "apple/ml-ane-transformers",
         "use the channels-first (B, C, 1, S) layout with 1×1 convolutions and avoid transposes"),
    Rule("transpose-a12", A12_FAMILY, lambda op, _: op.kind == "transpose", "gpu",
         "A12/A12X report 'Transpose unit is not supported' for layouts the A15 runs",
         "ggerganov/whisper.cpp PR 1716", "avoid transposes: keep tensors in the (B, C, 1, S) layout"),
    Rule("custom-layer", ALL_CHIPS, lambda op, _: op.kind == "custom", "cpu",
         "custom layers run on the CPU", HOLLANCE, "replace the custom layer with built-in layers"),
]  # fmt: skip


def _model_findings(model: ModelInventory, chip: str) -> list[LintFinding]:
    findings = []

    def add(rule_id: str, unit: str, reason: str, source: str, fix: str) -> None:
        findings.append(
            LintFinding(rule_id, chip, None, "(model)", model.model_type, unit, reason, source, fix)
        )

    if model.model_type == "mlProgram" and model.compute_precision == "float32":
        add(
            "float32-precision",
            "gpu",
            "the program computes in float32; the ANE computes in float16 only",
            "coremltools docs (compute precision); ane-facts.md",
            "convert with compute_precision=ct.precision.FLOAT16 (check accuracy, e.g. epsilons ≥ 1e-5)",
        )
    if any(f.flexible == "range" for f in model.inputs):
        add(
            "flexible-shape",
            "gpu",
            "fully flexible (range) input shapes keep work off the ANE",
            "coremltools docs flexible-inputs.md, faqs.md",
            "use enumerated shapes (ct.EnumeratedShapes); on iOS 17.4+ set ReshapeFrequency=Infrequent",
        )
    phones = {d.chip for d in catalog.DEVICES.values() if d.family == "iPhone"}
    if model.size_bytes > GIGABYTE and chip in phones:
        add(
            "model-over-1gb",
            "gpu",
            "models over ~1 GB do not run on the ANE on iPhone",
            "coremltools docs mlmodel-utilities.md",
            "quantize or palettize the weights, or split the model",
        )
    return findings


def lint(model: ModelInventory, chips: Sequence[str] | None = None) -> list[LintFinding]:
    """Findings for the chips asked (default: every chip of the catalog)."""
    wanted = [catalog.chip(c).name for c in chips] if chips else sorted(ALL_CHIPS)
    findings: list[LintFinding] = []
    for chip in wanted:
        for op in model.ops:
            for rule in RULES:
                if chip in rule.chips and rule.predicate(op, model):
                    findings.append(LintFinding(rule.rule_id, chip, op.index, op.name, op.type,
                                                rule.unit, rule.reason, rule.source, rule.fix))  # fmt: skip
        findings += _model_findings(model, chip)
    return findings
