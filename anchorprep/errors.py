"""The errors anchorprep raises on purpose: one vocabulary for the library and the CLI.

`InputError` is a per-item problem (an unreadable file, a malformed alignment, a missing column
value): the runner records it as one `errors.jsonl` line and carries on. `UsageError` is a problem
with the call itself (a bad argument, a settings mismatch on resume, an unusable input folder):
nothing is written, and the CLI exits with 2. `UsageError` is also a `ValueError`, so code that
guards a call with ``except ValueError`` keeps working.

Library messages name Python parameters in backquotes (`` `positive_window` must be LO:HI ``); the
CLI shows the same message with each backquoted parameter replaced by its option
(``--positive-window must be LO:HI``), see `anchorprep.cli`. So a Python user and a CLI user each
read the message in their own terms, from one ``raise``.
"""

from __future__ import annotations

import re

#: A backquoted Python parameter name inside a `UsageError` message.
PARAMETER = re.compile(r"`([a-z_][a-z0-9_]*)`")


class AnchorprepError(Exception):
    """Base class of every error anchorprep raises deliberately."""


class InputError(AnchorprepError):
    """One input item cannot be turned into a shard row.

    `reason` should tell the user what to fix; `path` names the offending file when there is one.
    """

    def __init__(self, reason: str, path: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = None if path is None else str(path)

    def __str__(self) -> str:
        return self.reason if self.path is None else f"{self.path}: {self.reason}"


class UsageError(AnchorprepError, ValueError):
    """The call is wrong (an argument, the configuration, an unusable input or output folder);
    nothing about individual items. Name parameters in backquotes: `` `edge` must be ... ``."""

    def render(self, option_for: dict[str, str]) -> str:
        """The message with each backquoted parameter in ``option_for`` replaced by its option
        name (the CLI passes ``{"edge": "--edge", ...}``); other backquoted words stay as they are."""
        return PARAMETER.sub(lambda m: option_for.get(m.group(1), m.group(0)), str(self))
