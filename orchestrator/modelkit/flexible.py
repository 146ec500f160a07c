"""The shapes a flexible input accepts, besides the default one modelkit costs it at.

A multi-array input's ``shape`` is its default (``ct.RangeDim``'s default, the default of
``ct.EnumeratedShapes``); ``shapeRange`` gives per-dimension bounds (upper -1: unbounded)
and ``enumeratedShapes`` the full list. Images carry the same as sizes (height, width).
"""

from __future__ import annotations

from typing import Any


def shape_options(feature_type: Any) -> dict[str, list[list[int]]] | None:
    """``{"range": [lower bounds, upper bounds]}`` or ``{"enumerated": [shape, …]}`` of a
    ``FeatureType``; None for a fixed input. An upper bound of -1 means unbounded."""
    kind = feature_type.WhichOneof("Type")
    if kind == "multiArrayType":
        array = feature_type.multiArrayType
        which = array.WhichOneof("ShapeFlexibility")
        if which == "shapeRange":
            ranges = array.shapeRange.sizeRanges
            return {"range": [[int(r.lowerBound) for r in ranges], [int(r.upperBound) for r in ranges]]}  # fmt: skip
        if which == "enumeratedShapes":
            return {"enumerated": [[int(d) for d in s.shape] for s in array.enumeratedShapes.shapes]}  # fmt: skip
    elif kind == "imageType":
        image = feature_type.imageType
        which = image.WhichOneof("SizeFlexibility")
        if which == "imageSizeRange":
            h, w = image.imageSizeRange.heightRange, image.imageSizeRange.widthRange
            return {"range": [[int(h.lowerBound), int(w.lowerBound)],
                              [int(h.upperBound), int(w.upperBound)]]}  # fmt: skip
        if which == "enumeratedSizes":
            sizes = image.enumeratedSizes.sizes
            return {"enumerated": [[int(s.height), int(s.width)] for s in sizes]}
    return None


def describe(options: dict[str, list[list[int]]] | None) -> str:
    """``range [1, 1]…[1, 4096]`` / ``one of [1, 16], [1, 32]`` for notes and text."""
    if not options:
        return ""
    if "range" in options:
        low, high = options["range"]
        return f"range {low}…{[d if d >= 0 else '∞' for d in high]}"
    return "one of " + ", ".join(str(s) for s in options.get("enumerated", []))
