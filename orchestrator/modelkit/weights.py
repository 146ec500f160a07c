"""Check an ML program's weight blobs against what its spec references, without reading them.

An ML program keeps its large constants in weight files (``weights/weight.bin``) in Core
ML's blob storage format, all integers little-endian:

- a 64-byte file header: ``uint32`` blob count, ``uint32`` format version, reserved bytes;
- per blob, a 64-byte metadata record at the offset a ``BlobFileValue`` of the spec names:
  ``uint32`` sentinel ``0xDEADBEEF``, ``uint32`` data type, ``uint64`` size in bytes,
  ``uint64`` offset of the data in the file, reserved bytes;
- the data itself, at that offset (aligned to 64 bytes by coremltools).

A file cut short or overwritten still parses as a spec, so without this check a broken
model would pass inspect and lint and fail only on a phone. Every ``BlobFileValue`` (the
``val`` of const ops, the attributes of ``constexpr_*`` ops, values bound to inputs, in
nested blocks too) must name a file inside the package, its metadata record must lie in
the file and carry the sentinel, and its data must lie in the file, after the file header.
Only the 64-byte records are read (one open per file), never the data: the check costs
microseconds per blob whatever the size of the weights. The data type is not checked
against a list, so a data type newer than this code does not refuse a good model.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from orchestrator.errors import ModelError

HEADER_BYTES = 64  # the file header, and each blob's metadata record
SENTINEL = 0xDEADBEEF
_RECORD = struct.Struct("<IIQQ")  # sentinel, data type, size in bytes, data offset
PREFIX = "@model_path/"
HINT = "the weights are truncated or corrupt: copy or export the whole model again"


@dataclass(frozen=True)
class BlobRef:
    file: str  # as the spec names it, without the @model_path/ prefix
    offset: int  # of the blob's metadata record
    owner: str  # the op (its first output) whose value it is, for messages


def blob_refs(spec: Any) -> Iterator[BlobRef]:
    """Every weight-file reference of an ML program spec."""
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            yield from block_refs(block)


def refs_besides(spec: Any, function_name: str, specialization: str) -> Iterator[BlobRef]:
    """The references of every block but one: ``mlprogram.program_ops`` collects those of
    the block it walks anyway (``op_refs``), so a program's ops are traversed once."""
    for name, function in spec.mlProgram.functions.items():
        for key, block in function.block_specializations.items():
            if (name, key) != (function_name, specialization):
                yield from block_refs(block)


def block_refs(block: Any) -> Iterator[BlobRef]:
    for op in block.operations:
        if op.type == "const":
            value = op.attributes.get("val")  # (indexing a missing key would insert it)
            if value is not None:
                yield from const_refs(op, value)
        else:
            yield from op_refs(op)


def const_refs(op: Any, value: Any) -> Iterator[BlobRef]:
    """The reference of a const op whose ``val`` is ``value``, if it is in a weight file."""
    if value.WhichOneof("value") == "blobFileValue":
        yield _ref(value.blobFileValue, _owner(op))


def op_refs(op: Any) -> Iterator[BlobRef]:
    """The references of an op other than const, nested blocks included."""
    # Only constexpr_* ops (palettised, quantised, sparse weights: attributes or bound
    # values) hold values; other ops name their inputs. A 1,000-op program has ~3,000
    # consts: this direct lookup is ~7× faster than a walk of every field.
    if op.type.startswith("constexpr"):
        yield from _constexpr_refs(op)
    elif op.blocks:  # cond, while_loop, …
        for inner in op.blocks:
            yield from block_refs(inner)


def _owner(op: Any) -> str:
    return str(op.outputs[0].name) if op.outputs else str(op.type)


def _constexpr_refs(op: Any) -> Iterator[BlobRef]:
    owner = _owner(op)
    for value in op.attributes.values():
        if value.WhichOneof("value") == "blobFileValue":
            yield _ref(value.blobFileValue, owner)
    for argument in op.inputs.values():
        for binding in argument.arguments:
            if (
                binding.WhichOneof("binding") == "value"
                and binding.value.WhichOneof("value") == "blobFileValue"
            ):
                yield _ref(binding.value.blobFileValue, owner)


def _ref(blob: Any, owner: str) -> BlobRef:
    return BlobRef(blob.fileName.removeprefix(PREFIX), int(blob.offset), owner)


def check_blobs(path: Path, spec: Any, spec_dir: Path) -> None:
    """Raise ModelError (one line naming ``path``, the file and the range) when a blob the
    spec references is missing, outside its file, or has no valid metadata record."""
    check_refs(path, blob_refs(spec), spec_dir)


def check_refs(path: Path, refs: Iterable[BlobRef], spec_dir: Path) -> None:
    """``check_blobs`` for references already collected."""
    by_file: dict[str, list[BlobRef]] = {}
    for ref in refs:
        by_file.setdefault(ref.file, []).append(ref)
    for name, in_file in by_file.items():
        parts = PurePosixPath(name).parts
        if not parts or name.startswith("/") or ".." in parts:
            # A reference out of the package could read any file of the machine.
            raise ModelError(
                f"{path}: {in_file[0].owner} names the weight file {name!r} outside the package",
                path=str(path), hint=HINT,
            )  # fmt: skip
        file = spec_dir / name
        if not file.is_file():
            raise ModelError(
                f"{path}: the weight file {name} is missing from the package",
                path=str(path), hint="copy the whole .mlpackage, weights included",
            )  # fmt: skip
        problems = _file_problems(file, name, in_file)
        if problems:
            extra = len(problems) - 1
            more = f" (and {extra} more blob{'s' if extra > 1 else ''} broken)" if extra else ""
            raise ModelError(f"{path}: {problems[0]}{more}", path=str(path), hint=HINT)


def _file_problems(file: Path, name: str, refs: list[BlobRef]) -> list[str]:
    problems = []
    try:
        fd = os.open(file, os.O_RDONLY)
    except OSError as error:
        return [f"cannot read {name} ({error.strerror or error})"]
    try:
        size = os.fstat(fd).st_size
        if size < HEADER_BYTES:
            return [f"{name} is {size} bytes, shorter than its {HEADER_BYTES}-byte header"]
        for ref in sorted(refs, key=lambda r: r.offset):
            problem = _blob_problem(fd, size, name, ref)
            if problem:
                problems.append(problem)
    except OSError as error:
        return [f"cannot read {name} ({error.strerror or error})"]
    finally:
        os.close(fd)
    return problems


def _blob_problem(fd: int, size: int, name: str, ref: BlobRef) -> str | None:
    start, end = ref.offset, ref.offset + HEADER_BYTES
    if start < HEADER_BYTES:
        return f"{ref.owner}'s blob offset {start} in {name} lies inside the file header"
    if end > size:
        return f"{name} is {size} bytes but {ref.owner}'s blob header needs bytes {start}..{end}"
    # One pread per blob (no seek, no buffering): ~1 µs each.
    sentinel, _dtype, length, data = _RECORD.unpack(os.pread(fd, _RECORD.size, start))
    if sentinel != SENTINEL:
        return (
            f"{name} has no blob header at byte {start} for {ref.owner} "
            f"(sentinel {sentinel:#010x}, not {SENTINEL:#x})"
        )
    if data < HEADER_BYTES:
        return (
            f"{ref.owner}'s blob header in {name} puts its data at byte {data}, in the file header"
        )
    if data + length > size:
        return (
            f"{name} is {size} bytes but {ref.owner}'s weight needs bytes {data}..{data + length}"
        )
    return None
