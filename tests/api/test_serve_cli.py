"""``cli.py serve`` refuses bad options and a database held by another process in one line."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from engine.streaming.local_broker import free_port
from tests.api.conftest import ServerFactory


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--consume-topic", "payments"],
            "error: --consume-topic needs --bootstrap-servers and --group",
        ),
        (
            ["--consume-topic", "payments", "--bootstrap-servers", "127.0.0.1:1"],
            "error: --consume-topic needs --bootstrap-servers and --group",
        ),
        (["--group", "ingest"], "error: the Kafka options go with --consume-topic"),
        (
            [
                "--consume-topic",
                "payments",
                "--bootstrap-servers",
                "127.0.0.1:1",
                "--group",
                "g",
                "--max-records",
                "0",
            ],
            "error: --max-records must be between 1 and 1,000,000, got 0",
        ),
        (
            ["--consume-topic", " ", "--bootstrap-servers", "127.0.0.1:1", "--group", "g"],
            "error: --consume-topic is empty; name the topic to consume",
        ),
        (["--schema", "nope"], "error: schema nope: not found (known schemas: "),
    ],
)
def test_bad_options(
    run_cli: Callable[..., Result], db: Path, options: list[str], message: str
) -> None:
    result = run_cli("serve", "--db", str(db), *options)
    assert result.exit_code == 2
    assert result.stderr.strip().startswith(message), result.stderr
    assert "Traceback" not in result.stderr
    assert not db.exists()  # refused before the database is opened


def test_database_held_by_a_running_server(
    servers: ServerFactory, run_cli: Callable[..., Result]
) -> None:
    server = servers()
    result = run_cli("serve", "--db", str(server.db), "--port", str(free_port()))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {server.db}: database is locked by process {server.process.pid} "
        "(wait for it to finish or stop it, or use another --db file)"
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "no-such-host.invalid"])
def test_an_address_it_cannot_listen_on_is_one_line(
    run_cli: Callable[..., Result], db: Path, host: str
) -> None:
    """uvicorn printed its start-up log, an error and its shutdown log, then exited with 3."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--db", str(db), "--host", host, "--port", str(port))
    why = "Address already in use" if host == "127.0.0.1" else "Name or service not known"
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        f"error: cannot listen on {host}:{port} ({why}) (stop what listens there, or choose "
        "another --host or --port)\n",
    )
    assert not db.exists()  # refused before the database is opened
