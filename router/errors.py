"""The small error hierarchy of carbon-router.

Every message says what was wrong, the value received and what was expected, so that a user can fix
the input without reading a traceback.
"""

from __future__ import annotations

__all__ = ["ConfigError", "InputError", "RouterError"]


class RouterError(Exception):
    """Base class of every error the router raises on purpose."""


class InputError(RouterError):
    """A file or message the user gave us is invalid.

    ``source`` names the file (or topic), ``line`` the 1-based line when there is one, ``field`` the
    field at fault when one is.
    """

    def __init__(
        self,
        problem: str,
        *,
        source: str | None = None,
        line: int | None = None,
        field: str | None = None,
        received: object = None,
        expected: str | None = None,
    ) -> None:
        self.problem = problem
        self.source = source
        self.line = line
        self.field = field
        self.received = received
        self.expected = expected
        super().__init__(self.render())

    def render(self) -> str:
        """The one-line message shown to the user."""
        where = self.source or "input"
        if self.line is not None:
            where += f", line {self.line}"
        if self.field:
            where += f", field '{self.field}'"
        text = f"{where}: {self.problem}"
        if self.received is not None:
            shown = repr(self.received)
            if len(shown) > 200:
                shown = shown[:197] + "..."
            text += f"; received {shown}"
        if self.expected:
            text += f"; expected {self.expected}"
        return text


class ConfigError(InputError):
    """A setting or the topology is invalid; the command stops with exit status 2."""
