"""Exceptions with one-line, user-facing messages.

Every error the library raises on purpose derives from :class:`MasqueradeError`; the CLI prints its
message on one line and exits non-zero.
"""

from __future__ import annotations


class MasqueradeError(Exception):
    """Base class; ``str(err)`` is a complete one-line message for the user."""

    exit_code = 2


class InputError(MasqueradeError):
    """An input file is missing, unreadable, corrupt, too large or of an unsupported kind."""


class LimitError(InputError):
    """An input is over a set limit (pixels, file size): bad input too, but one the user may raise
    (the web server answers 413 for it)."""


class NoFaceError(MasqueradeError):
    """No (matching) face was found where one is required."""

    exit_code = 3


class OutputError(MasqueradeError):
    """The output path is unusable: exists without --force, equals an input, bad extension."""


class ModelError(MasqueradeError):
    """A model file is missing or does not match its registered checksum."""


class SkipFace(Exception):
    """Raised by a swapper for one face it cannot swap (no mesh, outside the image …): the pipeline leaves
    that face as it is and goes on with the others. Not a user-facing error: when every face is
    skipped the pipeline raises :class:`NoFaceError`. Any other exception from a swapper is a bug and
    propagates."""
