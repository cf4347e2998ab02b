"""What a run reads: a stream of bytes and the name it is known by, read once, front to back.

A regular file, a FIFO, a pipe (``run <(zcat big.csv.gz)``): each is read exactly once, in
blocks, and what a run records about its input (size, quick fingerprint, content hash) is
computed from the bytes it actually read. A regular file may also be fingerprinted before the
run (``quick_fingerprint``, ``full_hash``), so that one already ingested is skipped without
reading it through; a stream cannot be, so whether it was already ingested is decided when
its run commits.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, BinaryIO, Protocol, TypeVar

from engine.errors import SourceError

MiB = 1 << 20
QUICK_BYTES = MiB  # the quick fingerprint hashes the size, the first and the last MiB
RAMP = 256  # the first block is this fraction of a block (at least RAMP_MIN), then doubles
RAMP_MIN = 64 << 10
DRAIN = 16  # the last blocks halve down to this fraction of a block (at least RAMP_MIN)
FDS = Path("/proc/self/fd")  # an open descriptor, opened again: the same file
T = TypeVar("T")


class Stream(Protocol):
    """What an Input reads from: a file, a pipe, a response body, a decompressor."""

    def read(self, n: int, /) -> bytes: ...

    def close(self) -> None: ...


# Opens the input again for random access (a Parquet file's footer is at its end): a path, or
# a file object pyarrow can read with seeks (an S3 object, an HTTP resource with ranges).
RandomAccess = Callable[[], Any]


class Input:
    """A byte stream and its name. ``path`` is set for a regular file, which can be read again
    (to fingerprint it before a run); ``size`` is its size when opened, None for a stream.
    ``random_access``, when set, opens the same bytes again for reading with seeks (what
    Parquet needs); a pipe or stdin has none."""

    def __init__(
        self,
        stream: Stream,
        name: str,
        *,
        size: int | None = None,
        path: Path | None = None,
        recorded_as: str | None = None,
        random_access: RandomAccess | None = None,
    ) -> None:
        self.stream = stream
        self.name = name
        self.size = size
        self.path = path
        # What a run records as its source: the resolved path of a regular file, else the name.
        self.recorded_as = recorded_as or (str(path.resolve()) if path is not None else name)
        if random_access is None and path is not None:
            random_access = functools.partial(str, path)
        self.random_access = random_access
        self._pending = b""
        self._reading = 0  # reads in progress (a reader thread may be blocked in one)

    def head(self, n: int) -> bytes:
        """The first ``n`` bytes (fewer if the input is shorter), still to be read. From a
        stream (a FIFO, a pipe, stdin) on a thread of its own, as ``waiting`` says: the bytes
        may be slow to come."""
        if self.size is None and threading.current_thread() is threading.main_thread():
            return waiting(lambda: self._head(n))
        return self._head(n)

    def _head(self, n: int) -> bytes:
        self._reading += 1
        try:
            while len(self._pending) < n:
                more = self.stream.read(n - len(self._pending))
                if not more:
                    break
                self._pending += more
            return self._pending[:n]
        finally:
            self._reading -= 1

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; fewer only at the end of the input."""
        self._reading += 1
        try:
            if not self._pending:
                return self.stream.read(n)
            out, self._pending = self._pending[:n], self._pending[n:]
            if len(out) < n:
                out += self.stream.read(n - len(out))
            return out
        finally:
            self._reading -= 1

    def close(self) -> None:
        """Close the stream, unless another thread is blocked reading it (a FIFO or pipe
        whose writer stalled): closing would wait for that read, which may never end (Ctrl-C
        then waited for the writer). That stream is left to the process's exit."""
        if self._reading:
            return
        self.stream.close()

    def __enter__(self) -> Input:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


STDIN = "stdin"


def open_stdin(stream: BinaryIO) -> Input:
    """Standard input (``run -``): a stream named ``stdin``, read once like a pipe, by its
    descriptor when it has one (``_Descriptor``)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # a stand-in without a descriptor
        return Input(_Unclosed(stream), STDIN)
    return Input(_Descriptor(fd), STDIN)


class _Descriptor:
    """A descriptor the process owns (standard input), read with ``os.read``: no buffer and
    no lock. A read blocked on a stalled writer held ``sys.stdin.buffer``'s lock, and Python
    aborted at exit trying to take it (exit 134 instead of 130 or 143 after a signal)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; fewer only at the end (a pipe gives what it holds at a time)."""
        chunks: list[bytes] = []
        wanted = n
        while wanted > 0:
            data = os.read(self._fd, wanted)
            if not data:
                break
            chunks.append(data)
            wanted -= len(data)
        return b"".join(chunks)

    def close(self) -> None:
        pass


def open_stream(stream: IO[Any], name: str) -> Input:
    """A file-like object the caller opened (and closes): binary, or text (read as UTF-8)."""
    if isinstance(stream, io.TextIOBase):
        return Input(_Encoded(stream), name)
    return Input(_Unclosed(stream), name)


class _Unclosed:
    """A stream whose owner closes it: reading it is ours, closing it is not."""

    def __init__(self, stream: IO[Any]) -> None:
        self._stream = stream

    def read(self, n: int) -> bytes:
        data = self._stream.read(n)
        if isinstance(data, str):
            raise TypeError("a text stream: pass it through open_stream")
        return bytes(data)

    def close(self) -> None:
        pass


class _Encoded(_Unclosed):
    """A text stream as UTF-8 bytes."""

    def __init__(self, stream: IO[Any]) -> None:
        super().__init__(stream)
        self._pending = b""

    def read(self, n: int) -> bytes:
        if len(self._pending) < n:
            text = self._stream.read(n)  # n characters: at least n bytes, unless at the end
            self._pending += text.encode("utf-8", "surrogatepass") if text else b""
        out, self._pending = self._pending[:n], self._pending[n:]
        return out


def open_input(path: Path, *, name: str | None = None) -> Input:
    """Open ``path`` for one pass, or raise a one-line SourceError saying why it cannot be read.

    A FIFO or a pipe is opened like a file (opening a FIFO waits for its writer); only a
    regular file has a size and can be read again. ``name``, when given, is shown in messages
    and recorded as the run's source instead of the path.
    """
    shown = name or str(path)
    if not path.exists():
        raise SourceError(shown, "no such file")
    if path.is_dir():
        raise SourceError(shown, "is a directory, not a file")
    try:
        stream = _open_fifo(path) if stat.S_ISFIFO(path.stat().st_mode) else path.open("rb")
    except OSError as exc:
        raise SourceError(shown, f"cannot be read ({exc.strerror})") from exc
    status = os.fstat(stream.fileno())
    if not stat.S_ISREG(status.st_mode):
        return Input(stream, shown, recorded_as=name)
    if status.st_size == 0:
        stream.close()
        raise SourceError(shown, "file is empty")
    return Input(stream, shown, size=status.st_size, path=path, recorded_as=name)


def waiting(call: Callable[[], T]) -> T:
    """``call()`` on a thread of its own, for what may block the main thread in the kernel
    for as long as someone else likes (opening a FIFO until its writer comes, reading a
    stream's first bytes while its writer stalls): a signal the kernel hands to another of
    the process's threads does not end a system call blocked in the main thread, where
    Ctrl-C then did nothing. The main thread waits in short joins, so that the signal's
    handler runs there (and the call's thread, a daemon, is left behind if it does)."""
    done: list[T] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            done.append(call())
        except BaseException as exc:  # re-raised in the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=run, name="waiting", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.1)
    if failed:
        raise failed[0]
    return done[0]


def _open_fifo(path: Path) -> BinaryIO:
    """Open a FIFO, which waits for its writer (``waiting``)."""
    return waiting(lambda: path.open("rb"))


def open_opened(stream: BinaryIO, name: str) -> Input:
    """A regular file the caller opened and checked (closing the Input closes it).

    It is read through its descriptor only, never by a name that could now lead elsewhere:
    fingerprinting it before the run and Parquet's seeks open ``/proc/self/fd/N``, which is
    the open file itself. ``name`` is shown in messages and recorded as the run's source.
    """
    fd = stream.fileno()
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        raise SourceError(name, "is not a regular file")
    if status.st_size == 0:
        raise SourceError(name, "file is empty")
    return Input(stream, name, size=status.st_size, path=FDS / str(fd), recorded_as=name)


@dataclass(frozen=True)
class Fingerprint:
    """What a run read: its size, the quick fingerprint and the SHA-256 of all of it."""

    size: int
    quick: str
    digest: str


def quick_digest(size: int, head: bytes, tail: bytes) -> str:
    digest = hashlib.sha256(str(size).encode())
    digest.update(head)
    digest.update(tail)
    return digest.hexdigest()


def quick_fingerprint(path: Path, size: int = QUICK_BYTES) -> str:
    """Size plus hashes of the first and last MiB: a cheap pre-check before a full hash."""
    total = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(size)
        tail = b""
        if total > size:
            fh.seek(max(size, total - size))
            tail = fh.read(size)
    return quick_digest(total, head, tail)


def full_hash(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


class Digest:
    """The fingerprint of a sequence of bytes fed to it in pieces: its size, the quick
    fingerprint and the SHA-256 of all of it."""

    def __init__(self) -> None:
        self.size = 0
        self._hash = hashlib.sha256()
        self._head = b""  # the first QUICK_BYTES
        self._tail = b""  # the last QUICK_BYTES

    def update(self, block: bytes | memoryview) -> None:
        """Feed ``block`` (bytes, or a view of a buffer: only its ends are copied)."""
        self._hash.update(block)
        self.size += len(block)
        if len(self._head) < QUICK_BYTES:
            self._head += bytes(block[: QUICK_BYTES - len(self._head)])
        end = bytes(block[-QUICK_BYTES:])
        self._tail = end if len(end) >= QUICK_BYTES else (self._tail + end)[-QUICK_BYTES:]

    def fingerprint(self) -> Fingerprint:
        """What ``quick_fingerprint`` and ``full_hash`` would say of a file holding exactly
        the bytes fed so far."""
        total = self.size
        tail = b""
        if total > QUICK_BYTES:  # the bytes after the first MiB, at most the last MiB
            tail = self._tail[-min(total - QUICK_BYTES, QUICK_BYTES) :]
        return Fingerprint(total, quick_digest(total, self._head, tail), self._hash.hexdigest())


class HashingReader:
    """Yields fixed-size blocks of an input and fingerprints everything read on the way.

    A ``Path`` is opened when the blocks are first asked for (and closed after the last);
    an ``Input`` is read from where it stands and left open for its owner to close.
    """

    def __init__(self, source: Path | Input, block_size: int) -> None:
        self.source = source
        self.name = str(source) if isinstance(source, Path) else source.name
        self.block_size = block_size
        self._limit = block_size  # limit_blocks
        self._told: int | None = None  # limit_blocks calls: once told, the ramp waits for them
        self._digest = Digest()

    @property
    def bytes_read(self) -> int:
        return self._digest.size

    def blocks(self) -> Iterator[bytes]:
        if isinstance(self.source, Path):
            with self.source.open("rb") as fh:
                yield from self._blocks(Input(fh, self.name))
        else:
            yield from self._blocks(self.source)

    def _blocks(self, source: Input) -> Iterator[bytes]:
        count = 0
        while True:
            block = source.read(self._next_size(count, source.size))
            count += 1
            if not block:
                return
            self._digest.update(block)
            yield block

    def _next_size(self, count: int, total: int | None) -> int:
        """Small blocks first and last, ``block_size`` between: the first batch reaches the
        store after a 256th of a block instead of a whole one (the storing thread waits for
        it), and the last batches shrink by halves, so that little is left to store when the
        validating thread has nothing more to do. A reader that is told its limit
        (``limit_blocks``) doubles once per telling, not per block: the reader runs ahead of
        the batches, and rows of a few bytes with errors in every field read 4 MiB (2.6M
        errors) before the first batch's errors were counted. The first block is small
        because its errors are not known before it is read: 1 MiB of rows whose missing
        fields each carry the whole row as their input (20,000 rows under a header of long
        names) made 400 MB of error inputs (README, Memory)."""
        first = min(self._limit, max(RAMP_MIN, self.block_size // RAMP))
        steps = count if self._told is None else min(count, self._told - 1)
        size = min(self._limit, first << min(steps, 30))
        if total is not None:
            last = max(RAMP_MIN, self.block_size // DRAIN)
            size = min(size, max(last, -(-(total - self.bytes_read) // 2)))
        return size

    def limit_blocks(self, size: int) -> None:
        """Read blocks of at most ``size`` bytes (and ``block_size``) from the next one on
        (``engine.block_budget``); called from another thread than the one reading, before
        its first block and after each batch."""
        self._limit = min(self.block_size, size)
        self._told = (self._told or 0) + 1

    @property
    def digest(self) -> str:
        return self._digest.fingerprint().digest

    def fingerprint(self) -> Fingerprint:
        """Of the bytes read so far: what ``quick_fingerprint`` and ``full_hash`` would say of
        a file holding exactly these bytes."""
        return self._digest.fingerprint()
