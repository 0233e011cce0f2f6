"""One error type for everything a user can get wrong, carrying where it happened.

A compositor needs to know *which* file, frame, node and input went wrong, so every error that
reaches a user carries those as fields and prints them in one line before the message.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace


@dataclass
class Where:
    """The place an error refers to; every field is optional."""

    node: str | None = None
    input: str | None = None
    file: str | None = None
    frame: int | None = None

    def describe(self) -> str:
        parts = []
        if self.node:
            parts.append(f"node {self.node}")
        if self.input:
            parts.append(f"input '{self.input}'")
        if self.frame is not None:
            parts.append(f"frame {self.frame}")
        if self.file:
            parts.append(f"file {self.file}")
        return ", ".join(parts)


# The module every error class says it is from. ComfyUI shows an error's type as its
# ``module.qualname``; in ComfyUI our real module is the pack folder's path plus
# ``.core.errors``, a long line that says nothing to a user. ``latentmirror.LatentmirrorError``
# is short and true: the package root serves these names (its ``__getattr__``), so pickling an
# error by reference (Ray sends a worker's error back) finds the same class again.
# (Not a dataclass: @dataclass looks the class's module up in sys.modules, and in ComfyUI no
# module is called ``latentmirror``.)
PUBLIC_MODULE = "latentmirror"


class LatentmirrorError(Exception):
    """A user-facing error: a message plus where it happened."""

    __module__ = PUBLIC_MODULE

    def __init__(self, message: str, where: Where | None = None):
        super().__init__(message)
        self.message = message
        self.where = where if where is not None else Where()

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls.__module__ = PUBLIC_MODULE  # WriteFailed, Interrupted: short names in ComfyUI too

    def __str__(self) -> str:
        place = self.where.describe()
        return f"[{place}] {self.message}" if place else self.message

    def at(self, **where) -> LatentmirrorError:
        """Fill in context that is not known yet (inner context wins) and return self."""
        known = {k: v for k, v in vars(self.where).items() if v is not None}
        self.where = replace(self.where, **{**where, **known})
        return self


def error(message: str, **where) -> LatentmirrorError:
    """Shorthand: ``raise error("no such file", file=path, frame=1001)``."""
    return LatentmirrorError(message, Where(**where))


def raise_all(problems: list[LatentmirrorError], what: str) -> None:
    """Raise every problem found at once, as ComfyUI lists every node error: one as itself,
    several as one error with a line each. Nothing when ``problems`` is empty."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        listed = "".join(f"\n  {problem}" for problem in problems)
        raise LatentmirrorError(f"{len(problems)} problems in {what}; nothing was run:{listed}")


@contextmanager
def context(**where) -> Iterator[None]:
    """Add context to any LatentmirrorError raised inside: ``with context(input="frames"): ...``."""
    try:
        yield
    except LatentmirrorError as exc:
        raise exc.at(**where) from exc.__cause__


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a device running out of memory (torch raises OutOfMemoryError, older paths a
    RuntimeError saying so)."""
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()
