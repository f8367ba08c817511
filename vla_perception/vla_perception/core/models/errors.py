"""Errors of the model layer: bad user input (VlaInputError subclasses) and missing weights."""

from __future__ import annotations

from vla_perception.core.types import VlaInputError

FETCH_COMMAND = "vla-perception models fetch --profile default"
MAKE_TINY_COMMAND = "vla-perception models make-tiny DIR (no network needed)"


class ImageInputError(VlaInputError):
    """The image cannot be used: not HxWx3, zero-sized, too small, or a box outside it."""


class TextInputError(VlaInputError):
    """Empty prompt, question or label list."""


class TextTooLongError(TextInputError):
    """Text longer than the model's text limit (never truncated silently)."""


class ModelNotAvailableError(RuntimeError):
    """The weights of a model are not on this machine and cannot (or may not) be downloaded."""

    def __init__(self, model: str, searched: list[str], command: str = FETCH_COMMAND, reason: str = ""):
        self.model, self.searched, self.command = model, list(searched), command
        where = "; ".join(self.searched) or "(nowhere)"
        because = f" ({reason})" if reason else ""
        super().__init__(
            f"model {model!r} is not available{because}. Searched: {where}. "
            f"Get it with: {command} (see docs/models.md), "
            f"or point the node's model parameter at a local copy."
        )


class AccelerationError(RuntimeError):
    """A runtime that was asked for cannot run this model: not installed, no CUDA, or the export failed."""
