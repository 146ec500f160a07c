"""Fake methods that take their arguments exactly as the real method does.

A fake of a pymobiledevice3 service (or of the driver's own seam) must accept what the real
method accepts and refuse what it refuses. Restating the real signature by hand in the fake
would copy it, and could drift from the installed library between upgrades; ``mirrors``
binds each call against the real signature instead, so the fake has the real names, kinds
and defaults by construction, a call the real one would refuse raises the same TypeError,
and the fake body reads the arguments by name."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

Call = Mapping[str, Any]
"""A call's arguments by parameter name, defaults filled in (``self`` included)."""

T = TypeVar("T")


def mirrors(
    real: Callable[..., Any],
) -> Callable[
    [Callable[[Any, Call], Coroutine[Any, Any, T]]], Callable[..., Coroutine[Any, Any, T]]
]:
    """Decorate ``async def method(self, call: Call)`` into a method with ``real``'s
    signature; ``method.mirrors`` is the function it binds against (test_signatures.py)."""
    target = inspect.unwrap(real)
    signature = inspect.signature(target)

    def wrap(
        fake: Callable[[Any, Call], Coroutine[Any, Any, T]],
    ) -> Callable[..., Coroutine[Any, Any, T]]:
        async def method(self: Any, *args: Any, **kwargs: Any) -> T:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            return await fake(self, bound.arguments)

        # Not functools.wraps: its __wrapped__ would lead inspect.unwrap to the fake's body.
        for name in ("__module__", "__name__", "__qualname__", "__doc__"):
            setattr(method, name, getattr(fake, name))
        method.__signature__ = signature  # type: ignore[attr-defined]
        method.mirrors = target  # type: ignore[attr-defined]
        return method

    return wrap
