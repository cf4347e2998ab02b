"""The engine's error hierarchy.

Every error a user can cause (bad file, bad schema, locked database, unreachable broker)
is one of these. Each carries *where* the problem is and renders a one-line message that
says what failed, where, and how to fix it, so the CLI and the API never show a traceback.
"""

from __future__ import annotations

from pathlib import Path


class EngineError(Exception):
    """Base class: a problem the user can act on.

    ``exit_code`` is what the CLI exits with: 2 when the input or the usage is wrong (a file
    that cannot be read, a bad option, a locked database), 1 for a runtime failure (the
    database could not be written).
    """

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class SourceError(EngineError):
    """An input file that cannot be read at all (missing, empty, no header, wrong format)."""

    def __init__(
        self,
        path: str | Path,
        problem: str,
        *,
        line: int | None = None,
        column: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = str(path)
        self.problem = problem
        self.line = line
        self.column = column
        where = self.path
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {problem}", hint=hint)

    def named(self, path: str) -> SourceError:
        """The same error about the same file, called ``path`` (an upload by its name)."""
        return SourceError(path, self.problem, line=self.line, column=self.column, hint=self.hint)


class SchemaError(EngineError):
    """A Pydantic model the engine cannot compile, or a schema name that does not resolve."""

    def __init__(
        self, schema: str, problem: str, *, field: str | None = None, hint: str | None = None
    ) -> None:
        self.schema = schema
        self.field = field
        where = f"schema {schema}" + (f", field {field!r}" if field else "")
        super().__init__(f"{where}: {problem}", hint=hint)


class StoreError(EngineError):
    """The DuckDB file cannot be opened or written."""

    def __init__(self, path: str | Path, problem: str, *, hint: str | None = None) -> None:
        self.path = str(path)
        super().__init__(f"{self.path}: {problem}", hint=hint)


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
            hint="wait for it to finish or stop it, or use another --db file",
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
        hint: str | None = None,
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
        super().__init__(f"{where}: {problem}", hint=hint)


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
