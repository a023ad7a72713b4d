"""The one exception type the domain layer raises."""
from __future__ import annotations


class DomainError(Exception):
    """A business rule said no.

    `code` is stable (tests, API clients and audit records rely on it); `message` is for people,
    already in the interface language.
    """

    def __init__(self, code: str, message: str, **details) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"
