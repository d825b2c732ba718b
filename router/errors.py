"""The small error hierarchy of carbon-router.

Every message says what was wrong, the value received and what was expected, so that a user can fix
the input without reading a traceback. An ``InputError`` carries one or several ``router.problems.Problem``s
(all the mistakes of a file at once) and renders one line per problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

from router.problems import Problem

__all__ = ["ConfigError", "InputError", "RouterError"]


class RouterError(Exception):
    """Base class of every error the router raises on purpose."""


class InputError(RouterError):
    """A file or message the user gave us is invalid.

    ``source`` names the file (or topic), ``line`` the 1-based line when there is one, ``field`` the
    field at fault when one is. These describe the first problem; ``problems`` holds all of them, and
    ``omitted`` counts further problems that were found but not kept (a cap on very bad files).
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
        self.problems: tuple[Problem, ...] = (
            Problem(source or "input", line, field, problem, received, expected),
        )
        self.omitted = 0
        super().__init__(self.render())

    @classmethod
    def from_problems(cls, problems: Sequence[Problem], *, omitted: int = 0) -> Self:
        """One error carrying every problem (at least one); its single fields describe the first."""
        if not problems:
            raise ValueError("InputError.from_problems needs at least one problem")
        first = problems[0]
        err = cls(
            first.problem,
            source=first.source,
            line=first.line,
            field=first.field,
            received=first.received,
            expected=first.expected,
        )
        err.problems = tuple(problems)
        err.omitted = omitted
        err.args = (err.render(),)
        return err

    def render(self) -> str:
        """The message shown to the user: one line, or a heading and one indented line per problem."""
        if len(self.problems) == 1 and not self.omitted:
            return self.problems[0].render()
        sources = list(dict.fromkeys(p.source for p in self.problems))
        total = len(self.problems) + self.omitted
        head = f"{total} problems in {', '.join(sources)}:"
        lines = [head, *(f"  {p.render()}" for p in self.problems)]
        if self.omitted:
            lines.append(
                f"  ... and {self.omitted} more not shown (the first {len(self.problems)} are listed)"
            )
        return "\n".join(lines)


class ConfigError(InputError):
    """A setting or the topology is invalid; the command stops with exit status 2."""
