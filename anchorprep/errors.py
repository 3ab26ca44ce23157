"""The errors anchorprep raises on purpose.

`InputError` is a per-item problem (an unreadable file, a malformed alignment, a missing column
value): the runner records it as one `errors.jsonl` line and carries on. `UsageError` is a problem
with the command itself (bad options, a settings mismatch on `--resume`): the CLI exits with 2.
"""

from __future__ import annotations


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


class UsageError(AnchorprepError):
    """The command line or configuration is wrong; nothing about individual items."""
