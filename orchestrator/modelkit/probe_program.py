"""ML program probes built as protobuf directly from the source spec (no ``ct.convert``).

Copying the op and the const ops it reads keeps every parameter, shape and dtype exactly
as in the source, and skips coremltools' conversion pipeline with its full
``gc.collect()`` per call (~150 ms): a probe costs a few milliseconds.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.errors import ModelError
from orchestrator.modelkit.coreml_parts import part

# ML program tensor dtype → multiArray feature dtype; others cannot be model inputs/outputs.
FEATURE_DTYPES = {"FLOAT16": "FLOAT16", "FLOAT32": "FLOAT32", "INT32": "INT32", "FLOAT64": "DOUBLE"}
# Blob-stored const dtypes this module can copy, by the suffix of the blob reader/writer method.
BLOB_METHODS = {"FLOAT16": "fp16", "FLOAT32": "float", "INT8": "int8", "UINT8": "uint8",
                "INT16": "int16", "UINT16": "uint16", "INT32": "int32", "UINT32": "uint32"}  # fmt: skip
FP16_FEATURES_SINCE = 7  # multiArray FLOAT16 inputs/outputs need specification version 7 (iOS 16)
MODEL_FILE = "model.mlmodel"
MANIFEST = "Manifest.json"
AUTHOR = "com.apple.CoreML"  # the item author (and Data/ folder) Core ML packages use


class ProbeSkipped(Exception):
    """This op cannot stand alone as a probe; the message says why (internal, never escapes)."""


class ProgramSource:
    """An ML program's main block, indexed for cutting single ops out of it."""

    def __init__(self, spec: Any, package: Path, spec_dir: Path) -> None:
        self.spec = spec
        self.package = package
        self.spec_dir = spec_dir  # where "@model_path" points: the folder of the spec file
        self.dtype_name: Callable[[int], str] = part("proto.MIL_pb2").DataType.Name
        function = spec.mlProgram.functions["main"]
        self.opset = function.opset
        block = function.block_specializations[self.opset]
        self.types: dict[str, Any] = {value.name: value.type for value in function.inputs}
        self.consts: dict[str, Any] = {}
        self.compute: list[Any] = []
        for op in block.operations:
            for out in op.outputs:
                self.types[out.name] = out.type
            if op.type == "const":
                self.consts[op.outputs[0].name] = op
            else:
                self.compute.append(op)
        self._readers: dict[Path, Any] = {}

    def blob_file(self, file_name: str) -> Path:
        relative = file_name.removeprefix("@model_path/")
        return self.spec_dir / relative

    def read_blob(self, file_name: str, offset: int, method: str) -> Any:
        path = self.blob_file(file_name)
        if not path.is_file():
            raise ModelError(
                f"{self.package}: the weight file {path.name} is missing",
                path=str(self.package),
                hint="copy the whole .mlpackage, weights included",
            )
        if path not in self._readers:
            self._readers[path] = part("libmilstoragepython")._BlobStorageReader(str(path))
        return getattr(self._readers[path], f"read_{method}_data")(offset)

    def build_probe(self, index: int, destination: Path, repeat: int = 1) -> None:
        """Write compute op ``index`` as a one-op .mlpackage at ``destination``; with
        ``repeat`` > 1, that many parallel copies of it reading the same inputs, each a
        model output (a lifted probe: more op time, the same fixed overhead)."""
        op = self.compute[index]
        if len(op.blocks):
            raise ProbeSkipped("ops with nested blocks (cond, loops) cannot stand alone")
        self._emit([self._copy_op(op, copy) for copy in range(repeat)], destination, every=True)

    def build_prefix(self, count: int, destination: Path) -> None:
        """Write the first ``count`` compute ops as a model at ``destination``: every value
        they read from outside becomes an input, every value no later op of the prefix
        reads becomes an output (so nothing is dead code)."""
        self.build_window(0, count, destination)

    def build_window(self, start: int, stop: int, destination: Path) -> None:
        """Write compute ops ``start`` … ``stop - 1`` as a model, as a prefix is written
        (context search: a segment with the ops that border it, bisect/context.py)."""
        ops = self.compute[start:stop]
        nested = next((op for op in ops if len(op.blocks)), None)
        if nested is not None:
            raise ProbeSkipped(f"{nested.type} has nested blocks: cut the model before it")
        self._emit(ops, destination, every=False)

    def _emit(self, ops: list[Any], destination: Path, *, every: bool) -> None:
        """A program of ``ops`` with the constants they read inlined and the rest of what
        they read as inputs; outputs: every op's (``every``), or those nothing reads."""
        probe = part("proto.Model_pb2").Model()
        probe.specificationVersion = self.spec.specificationVersion
        probe.mlProgram.version = self.spec.mlProgram.version
        for key, value in self.spec.mlProgram.attributes.items():
            probe.mlProgram.attributes[key].CopyFrom(value)
        function = probe.mlProgram.functions["main"]
        function.opset = self.opset
        block = function.block_specializations[self.opset]
        read: set[str] = set()
        produced: set[str] = set()
        with tempfile.TemporaryDirectory(dir=destination.parent) as scratch:
            weights = Path(scratch) / "weights"
            weights.mkdir()
            writer: list[Any] = []  # created on the first blob so weightless probes have none
            for op in ops:
                for _, argument in sorted(op.inputs.items()):  # map order varies by process
                    for binding in argument.arguments:
                        name = binding.name
                        if binding.WhichOneof("binding") != "name":
                            continue
                        if name not in read and name not in produced:
                            if name in self.consts:
                                block.operations.append(self._inline_const(name, weights, writer))
                            else:
                                self._add_input(probe, function, name)
                        read.add(name)
                block.operations.append(op)
                produced.update(out.name for out in op.outputs)
            for op in ops:
                for out in op.outputs:
                    if every or out.name not in read or op is ops[-1]:
                        block.outputs.append(out.name)
                        self._add_feature(probe, probe.description.output, out.name, out.type)
            del writer[:]  # the blob writer flushes when released
            self._save(probe, Path(scratch), weights, destination)

    @staticmethod
    def _copy_op(op: Any, copy: int) -> Any:
        if copy == 0:
            return op
        copied = type(op)()
        copied.CopyFrom(op)
        for out in copied.outputs:
            out.name = f"{out.name}__copy{copy}"
        if "name" in copied.attributes:  # op names must be unique within the program
            name = copied.attributes["name"].immediateValue.tensor.strings.values
            if name:
                name[0] = f"{name[0]}__copy{copy}"
        return copied

    def _inline_const(self, name: str, weights: Path, writer: list[Any]) -> Any:
        const = type(self.consts[name])()
        const.CopyFrom(self.consts[name])
        value = const.attributes["val"]
        if value.WhichOneof("value") != "blobFileValue":
            return const
        dtype = self.dtype_name(value.type.tensorType.dataType)
        method = BLOB_METHODS.get(dtype)
        if method is None:
            raise ProbeSkipped(f"constant {name} is stored as {dtype}, which probes cannot copy")
        data = self.read_blob(value.blobFileValue.fileName, value.blobFileValue.offset, method)
        if not writer:
            writer.append(
                part("libmilstoragepython")._BlobStorageWriter(str(weights / "weight.bin"))
            )
        value.blobFileValue.fileName = "@model_path/weights/weight.bin"
        value.blobFileValue.offset = getattr(writer[0], f"write_{method}_data")(data)
        return const

    def _add_input(self, probe: Any, function: Any, name: str) -> None:
        value_type = self.types.get(name)
        if value_type is None:
            raise ProbeSkipped(f"input {name} has no declared type")
        entry = function.inputs.add()
        entry.name = name
        entry.type.CopyFrom(value_type)
        self._add_feature(probe, probe.description.input, name, value_type)

    def _add_feature(self, probe: Any, features: Any, name: str, value_type: Any) -> None:
        if value_type.WhichOneof("type") != "tensorType":
            raise ProbeSkipped(f"{name} is not a tensor")
        tensor = value_type.tensorType
        dtype = FEATURE_DTYPES.get(self.dtype_name(tensor.dataType))
        if dtype is None:
            raise ProbeSkipped(f"{name} is {self.dtype_name(tensor.dataType)}: not a model feature")
        dims = []
        for dim in tensor.dimensions:
            if dim.WhichOneof("dimension") != "constant":
                raise ProbeSkipped(f"{name} has a symbolic shape")
            dims.append(int(dim.constant.size))
        if dtype == "FLOAT16":
            probe.specificationVersion = max(probe.specificationVersion, FP16_FEATURES_SINCE)
        feature = features.add()
        feature.name = name
        array = feature.type.multiArrayType
        array.shape.extend(dims)
        array.dataType = part("proto.FeatureTypes_pb2").ArrayFeatureType.ArrayDataType.Value(dtype)

    @staticmethod
    def _save(probe: Any, scratch: Path, weights: Path, destination: Path) -> None:
        spec_file = scratch / MODEL_FILE
        spec_file.write_bytes(probe.SerializeToString(deterministic=True))
        package = part("libmodelpackage").ModelPackage(str(destination))
        package.setRootModel(str(spec_file), MODEL_FILE, AUTHOR, "anefarm probe")
        if any(weights.iterdir()):
            package.addItem(str(weights), "weights", AUTHOR, "anefarm probe weights")
        del package
        _stable_identifiers(destination / MANIFEST)


def _stable_identifiers(manifest: Path) -> None:
    """Replace the package's random item identifiers with ones derived from each item's
    path, so the same probe is the same bytes (and the same artifact) every time."""
    data = json.loads(manifest.read_text(encoding="utf-8"))
    entries = data.get("itemInfoEntries", {})
    renamed = {
        old: str(uuid.uuid5(uuid.NAMESPACE_URL, f"anefarm-probe:{entry.get('path', old)}")).upper()
        for old, entry in entries.items()
    }
    data["itemInfoEntries"] = {renamed[k]: v for k, v in entries.items()}
    root = data.get("rootModelIdentifier")
    if root in renamed:
        data["rootModelIdentifier"] = renamed[root]
    manifest.write_text(json.dumps(data, indent=4, sort_keys=True) + "\n", encoding="utf-8")
