"""The parts of coremltools that reading and cutting a model need, without the rest.

Inspecting a model, fingerprinting it and writing probes use only coremltools' protobuf
classes (``coremltools.proto``) and two C extensions (the MIL weight-blob reader/writer
and the ``.mlpackage`` writer). ``import coremltools`` itself costs ~1 s of CPU
(its ``__init__`` imports every converter: sympy, scipy, the xgboost and libsvm glue)
and prints "Failed to load _MLModelProxy" on Linux. Every ``anefarm submit``,
``inspect`` and ``lint``, and every SIMULATED device child reads models, so that second
adds up (the test suite started ~240 such processes; docs/performance.md).

``part("proto.Model_pb2")`` loads just that submodule: the package's ``__init__`` is
skipped by importing under a bare package object that is removed again afterwards. The
submodules stay in ``sys.modules``, so a later ``import coremltools`` (samples, tests)
reuses them: one ``Model_pb2`` per process, as protobuf's descriptor pool requires. If a
coremltools release ever makes a part need its ``__init__``, ``part`` falls back to the
full import (slower, same answers); ``tests/modelkit/test_coreml_parts.py`` notices.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from types import ModuleType

from orchestrator.modelkit import quiet

PACKAGE = "coremltools"
# What `part` may load alone: these import nothing from coremltools' package __init__.
LIGHT = ("proto", "libmilstoragepython", "libmodelpackage")
# The bare package is in sys.modules only while one part loads: no other thread may see it.
_lock = threading.Lock()


def part(name: str) -> ModuleType:
    """``coremltools.<name>`` (``name`` under one of ``LIGHT``), loaded without the rest of
    coremltools unless that is loaded already."""
    if name.split(".", maxsplit=1)[0] not in LIGHT:
        raise ValueError(f"coremltools.{name} is not one of the light parts {LIGHT}")
    qualified = f"{PACKAGE}.{name}"
    with _lock:
        loaded = sys.modules.get(qualified)
        if loaded is not None:
            return loaded
        if PACKAGE in sys.modules:  # the whole of coremltools is here already
            return importlib.import_module(qualified)
        before = set(sys.modules)
        try:
            return _alone(qualified)
        except (ImportError, AttributeError):
            # What failed half-way must not be found later by the full import.
            for added in set(sys.modules) - before:
                del sys.modules[added]
    with quiet.silenced():  # the fallback: coremltools as it imports itself
        return importlib.import_module(qualified)


def _alone(qualified: str) -> ModuleType:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None:
        raise ImportError(f"{PACKAGE} is not installed")
    bare = importlib.util.module_from_spec(spec)  # __path__ set, __init__ not run
    sys.modules[PACKAGE] = bare
    try:
        return importlib.import_module(qualified)
    finally:
        if sys.modules.get(PACKAGE) is bare:
            del sys.modules[PACKAGE]
