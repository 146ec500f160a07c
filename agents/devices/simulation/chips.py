"""Per-chip throughput, bandwidth and overheads of the simulated devices (docs/simulation.md)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from orchestrator import catalog
from orchestrator.protocol import ComputeUnit

ANE, GPU, CPU = ComputeUnit.ANE, ComputeUnit.GPU, ComputeUnit.CPU
ALL_UNITS_ORDER = (ANE, GPU, CPU)


@dataclass(frozen=True)
class ChipModel:
    """Effective (not peak) rates one op sees on each unit of one chip."""

    name: str
    generation: int
    ane_tflops: float  # public TOPS × ANE_EFFICIENCY
    gpu_tflops: float  # effective fp16
    cpu_gflops: float  # effective, one performance cluster
    bandwidth_gbs: float  # memory bandwidth seen by one op

    def flops_per_ms(self, unit: ComputeUnit) -> float:
        return {ANE: self.ane_tflops * 1e9, GPU: self.gpu_tflops * 1e9, CPU: self.cpu_gflops * 1e6}[
            unit
        ]


# Assumption: small models reach about 30 % of the ANE's advertised peak TOPS.
ANE_EFFICIENCY = 0.3
# Not published (ane-facts.md): the A13 is "~+20 % over A12"; the A18 family is assumed
# equal to the A17 Pro.
UNPUBLISHED_TOPS = {"A13": 6.0, "A18": 35.0, "A18 Pro": 35.0}

# Assumptions: order of magnitude of public GPU/CPU figures, effective rather than peak.
GPU_TFLOPS = {"A12": 0.5, "A12X": 1.0, "A12Z": 1.1, "A13": 0.6, "A14": 0.75, "M1": 2.6, "A15": 1.3,
              "A16": 1.7, "A17 Pro": 2.1, "A18": 2.0, "A18 Pro": 2.2, "M4": 4.0}  # fmt: skip
CPU_GFLOPS = {"A12": 20, "A12X": 24, "A12Z": 24, "A13": 25, "A14": 35, "M1": 60, "A15": 40,
              "A16": 45, "A17 Pro": 55, "A18": 60, "A18 Pro": 62, "M4": 90}  # fmt: skip
BANDWIDTH_GBS = {"A12": 25, "A12X": 50, "A12Z": 50, "A13": 30, "A14": 35, "M1": 60, "A15": 40,
                 "A16": 50, "A17 Pro": 50, "A18": 60, "A18 Pro": 60, "M4": 120}  # fmt: skip

# Fixed costs in milliseconds (assumptions): each op on its unit, each dispatch of a
# segment of consecutive ops on one unit, and one Core ML prediction call.
OP_OVERHEAD_MS = {ANE: 0.004, GPU: 0.008, CPU: 0.001}
SEGMENT_OVERHEAD_MS = {ANE: 0.12, GPU: 0.20, CPU: 0.0}
CALL_OVERHEAD_MS = 0.02
# Moving a tensor between units (assumption): a fixed hand-over plus bytes at this rate.
TRANSFER_FIXED_MS = 0.05
TRANSFER_GBS = 8.0


@cache
def chip_model(chip: str) -> ChipModel:
    """The rates of one catalog chip (``A12``, ``A17 Pro`` …)."""
    info = catalog.chip(chip)
    tops = info.ane_tops if info.ane_tops is not None else UNPUBLISHED_TOPS[info.name]
    return ChipModel(
        name=info.name,
        generation=info.generation,
        ane_tflops=tops * ANE_EFFICIENCY,
        gpu_tflops=GPU_TFLOPS[info.name],
        cpu_gflops=CPU_GFLOPS[info.name],
        bandwidth_gbs=BANDWIDTH_GBS[info.name],
    )
