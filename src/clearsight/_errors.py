"""Typed errors raised by clearsight.

Every error carries a one-line message that names the offending file (when there is one) and,
where possible, says how to fix the problem. The command-line interface prints ``str(error)``
as is, so messages never span several lines.
"""

from __future__ import annotations

__all__ = [
    "ClearsightError",
    "ImageReadError",
    "EmptyImageFileError",
    "UnsupportedImageError",
    "CorruptImageError",
    "ImageTooLargeError",
    "ImageWriteError",
    "ShapeError",
    "UnknownNameError",
]


class ClearsightError(Exception):
    """Base class of every error clearsight raises on purpose."""

    def __init__(self, message: str) -> None:
        # Keep messages on one line whatever the underlying library said.
        super().__init__(" ".join(str(message).split()))


class ImageReadError(ClearsightError):
    """An image file could not be read (missing, unreadable, not an image, corrupt)."""


class EmptyImageFileError(ImageReadError):
    """The file holds zero bytes."""


class UnsupportedImageError(ImageReadError):
    """The file is not an image in a format clearsight can decode."""


class CorruptImageError(ImageReadError):
    """The file looks like an image but its data is truncated or damaged."""


class ImageTooLargeError(ImageReadError):
    """The image has more pixels than the configured limit."""


class ImageWriteError(ClearsightError):
    """An image could not be written (folder not writable, disk full, bad format)."""


class ShapeError(ClearsightError, ValueError):
    """A tensor argument does not have the documented shape or value range."""


class UnknownNameError(ClearsightError, KeyError):
    """A registry lookup failed; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])
