"""The engine's error hierarchy.

Every error a user can cause (bad file, bad schema, locked database, unreachable broker)
is one of these. Each carries structured fields: *what* failed (``problem``), *where*
(``where``: a file and line, a database, a topic and offset) and *how to fix it* (``hint``,
plain words, or a :class:`Remedy`, a setting to change). The library speaks data, the front
ends speak words: a Remedy names the setting (``format``), and each front end spells it
(``--format json`` on the command line, ``source_type=json`` over HTTP, ``format='json'`` in
Python) with :meth:`EngineError.render`. ``str(error)`` is the Python spelling.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# (setting, values) -> how a front end names it: ("format", ("json",)) -> "--format json".
Spelling = Callable[[str, tuple[str, ...]], str]


FLAGS = frozenset({"force", "new_table"})  # settings that are switched on rather than given a value


def python_spelling(setting: str, values: tuple[str, ...]) -> str:
    """The keyword argument of ``engine.ingest`` and friends: ``format='json'``, ``force=True``,
    or its name alone (``db``)."""
    if setting in FLAGS:
        return f"{setting}=True"
    if not values:
        return setting
    return f"{setting}=" + " or ".join(repr(value) for value in values)


def neutral_spelling(setting: str, values: tuple[str, ...]) -> str:
    """No front end's words (for what is stored, which every front end reads): the setting's
    name and its values, ``format json``."""
    return " ".join((setting, "|".join(values))) if values else setting


@dataclass(frozen=True)
class Remedy:
    """A fix that changes a setting: ``template`` holds ``{}`` where the front end's spelling
    of ``setting`` (with ``values``, the values to choose from) goes."""

    template: str  # "pass {}" / "use {} to ingest it again"
    setting: str  # "format", "force", "db", "delimiter"...
    values: tuple[str, ...] = ()

    def words(self, spell: Spelling = python_spelling) -> str:
        return self.template.format(spell(self.setting, self.values))


class EngineError(Exception):
    """Base class: a problem the user can act on.

    ``exit_code`` is what the CLI exits with: 2 when the input or the usage is wrong (a file
    that cannot be read, a bad option, a locked database), 1 for a runtime failure (the
    database could not be written).
    """

    exit_code = 2
    run_id: int | None = None  # set when the error ended a run that was recorded (as failed)

    def __init__(
        self,
        problem: str,
        *,
        where: str | None = None,
        hint: str | Remedy | None = None,
        setting: str | None = None,
    ) -> None:
        self.problem = problem
        self.where = where
        self.hint = hint
        # The setting the problem is about, named where ``problem`` has ``{}`` ("{} must be
        # positive"), as each front end spells it (``--max-wait-ms``, ``max_wait_ms``).
        self.setting = setting
        super().__init__(self.render())

    def worded(self, spell: Spelling = python_spelling) -> str:
        """The problem, the setting it is about in ``spell``'s words."""
        if self.setting is None:
            return self.problem
        return self.problem.format(spell(self.setting, ()))

    @property
    def message(self) -> str:
        """What failed and where, without the fix."""
        return self.located(python_spelling)

    def located(self, spell: Spelling) -> str:
        problem = self.worded(spell)
        return f"{self.where}: {problem}" if self.where else problem

    def remedy_text(self, spell: Spelling = python_spelling) -> str | None:
        if isinstance(self.hint, Remedy):
            return self.hint.words(spell)
        return self.hint

    def render(self, spell: Spelling = python_spelling) -> str:
        """One line: what failed, where, and the fix in the words of ``spell``'s front end."""
        fix = self.remedy_text(spell)
        message = self.located(spell)
        return f"{message} ({fix})" if fix else message

    def __str__(self) -> str:
        return self.render()


class SourceError(EngineError):
    """An input that cannot be read at all (missing, empty, no header, wrong format)."""

    def __init__(
        self,
        path: str | Path,
        problem: str,
        *,
        line: int | None = None,
        column: str | None = None,
        hint: str | Remedy | None = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.column = column
        where = self.path
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(problem, where=where, hint=hint)

    def named(self, path: str) -> SourceError:
        """The same error about the same file, called ``path`` (an upload by its name)."""
        return SourceError(path, self.problem, line=self.line, column=self.column, hint=self.hint)


class SchemaError(EngineError):
    """A Pydantic model the engine cannot compile, or a schema name that does not resolve."""

    def __init__(
        self,
        schema: str,
        problem: str,
        *,
        field: str | None = None,
        hint: str | Remedy | None = None,
    ) -> None:
        self.schema = schema
        self.field = field
        where = f"schema {schema}" + (f", field {field!r}" if field else "")
        super().__init__(problem, where=where, hint=hint)


class StoreError(EngineError):
    """The DuckDB file cannot be opened or written."""

    def __init__(self, path: str | Path, problem: str, *, hint: str | Remedy | None = None) -> None:
        self.path = str(path)
        super().__init__(problem, where=self.path, hint=hint)


class StoreWriteError(StoreError):
    """The database failed while being written (a full disk, an I/O error): a runtime failure.

    The transaction in progress was rolled back; what was committed before is intact.
    """

    exit_code = 1


class OutputWriteError(EngineError):
    """An output file (an export, a report) could not be written for lack of space or an I/O
    error: a runtime failure. Nothing was left under its name."""

    exit_code = 1


class StoreLockedError(StoreError):
    """Another process holds the DuckDB file open for writing."""

    def __init__(self, path: str | Path, pid: int | None) -> None:
        self.pid = pid
        holder = f"process {pid}" if pid is not None else "another process"
        super().__init__(
            path,
            f"database is locked by {holder}",
            hint=Remedy("wait for it to finish or stop it, or use another {} file", "db"),
        )


class ConfigError(EngineError):
    """An option or setting that makes no sense (bad format name, bad context value...)."""


class StreamError(EngineError):
    """A Kafka problem, located by topic, partition and offset where known."""

    def __init__(
        self,
        problem: str,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
        hint: str | Remedy | None = None,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        where = "kafka"
        if topic is not None:
            where += f" topic {topic!r}"
        if partition is not None:
            where += f" partition {partition}"
        if offset is not None:
            where += f" offset {offset}"
        super().__init__(problem, where=where, hint=hint)


class BrokersUnreachableError(StreamError):
    """No broker answered for as long as the consumer was told to wait (``--give-up-after``)."""

    exit_code = 1

    def __init__(self, servers: str, waited_s: float, reason: str) -> None:
        self.servers = servers
        self.waited_s = waited_s
        because = f" ({reason})" if reason else ""
        super().__init__(
            f"the brokers at {servers} stayed unreachable for {waited_s:g} s{because}; gave up",
            hint="the batches written so far are kept; start the consumer again once the "
            "brokers are back",
        )


class Interrupted(BaseException):
    """The process was asked to stop (SIGINT, SIGTERM) while it worked.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` swallows it; but
    not a KeyboardInterrupt, which click would turn into "Aborted!" and exit code 1.
    """

    def __init__(self, signum: int, name: str) -> None:
        self.signum = signum
        self.name = name
        super().__init__(f"interrupted by {name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum
