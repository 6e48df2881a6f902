"""Errors a user can act on: each names the file, the line and what is wrong."""

from __future__ import annotations

# Exit codes, defined in one place. The CLI maps outcomes to these and nothing else.
EXIT_OK = 0
EXIT_FINDINGS = 1  # --strict found ambiguous/orphan links; diff found differences
EXIT_INPUT = 2  # unreadable or malformed input, bad usage


class TracetreeError(Exception):
    """Base class for every error tracetree raises on purpose."""


class InputError(TracetreeError):
    """Input that cannot be used: a malformed line, a missing field, an unreadable file."""

    def __init__(self, path: str, line: int | None, detail: str, column: int | None = None):
        self.path = path
        self.line = line
        self.column = column
        self.detail = detail
        super().__init__(str(self))

    def __reduce__(self) -> tuple[type[InputError], tuple[str, int | None, str, int | None]]:
        # Raised in a worker process, it is pickled back to the parent: with all its fields.
        return (InputError, (self.path, self.line, self.detail, self.column))

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.detail}"
