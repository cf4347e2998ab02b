"""Lakes on a local directory and on S3 (moto's server on 127.0.0.1), and the CLI: in the test
process (``cli``, answering as a process would) or in its own process (``cli_process``, and
``CLI`` for Popen: for many writers really at once, signals and clean exits)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from engine.lake.location import Lake
from engine.lake.reader import open_lake_reader
from engine.streaming.local_broker import LocalBroker
from tests.inprocess import run_cli
from tests.sources.test_remote import s3_server  # noqa: F401 - the shared moto fixture
from tests.streaming.conftest import Kafka

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "lake-tests"
CLI = [sys.executable, str(ROOT / "cli.py")]
OWN_PROCESS = {"consume", "produce", "serve"}


def lake_rows(lake: Lake, query: str) -> list[tuple[object, ...]]:
    """A query through the lake's reader, as the read commands make it."""
    with open_lake_reader(lake) as store:
        return store.rows(query)


def db_rows(db: Path, query: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(query).fetchall()
    finally:
        con.close()


@pytest.fixture
def cli_env() -> dict[str, str]:
    """The environment of the CLI subprocesses (S3 tests add the AWS variables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "INGEST_"))}
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.fixture
def cli(cli_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``cli.py`` in this process (tests/inprocess.py); Kafka commands in their own process
    (they handle signals and log as a process of their own)."""

    def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        if args and args[0] in OWN_PROCESS:
            return subprocess.run(
                [*CLI, *args], capture_output=True, text=True, env=env or cli_env, cwd=ROOT,
                timeout=300,
            )  # fmt: skip
        return run_cli(list(args), env=env or cli_env, cwd=ROOT)

    return _run


@pytest.fixture
def cli_process(cli_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``cli.py`` in its own process, for what only a process shows (how it exits)."""

    def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args], capture_output=True, text=True, env=env or cli_env, cwd=ROOT, timeout=300
        )

    return _run


def processes(
    commands: list[list[str]], env: dict[str, str] | None = None, at_once: int = 2
) -> list[subprocess.CompletedProcess[str]]:
    """Each command in its own process, ``at_once`` of them running at a time (readers whose
    exit is checked: how each process ends is what counts, not their order)."""
    done: list[subprocess.CompletedProcess[str]] = []
    for start in range(0, len(commands), at_once):
        running = [
            (c, subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=env, cwd=ROOT))
            for c in commands[start : start + at_once]
        ]  # fmt: skip
        for command, process in running:
            out, err = process.communicate(timeout=120)
            done.append(subprocess.CompletedProcess(command, process.returncode, out, err))
    return done


@pytest.fixture
def s3_lake(
    s3_server: str,  # noqa: F811
    cli_env: dict[str, str],
) -> Iterator[tuple[Lake, dict[str, str]]]:
    """A lake in a fresh bucket of the local S3 server, and a CLI environment that reaches it."""
    import boto3

    aws = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_server,
    }
    client = boto3.client("s3", **_boto(aws))
    client.create_bucket(Bucket=BUCKET)
    cli_env.update(aws)
    try:
        yield Lake.from_environment(f"s3://{BUCKET}/lake", aws), cli_env
    finally:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=BUCKET, Key=item["Key"])
        client.delete_bucket(Bucket=BUCKET)


def _boto(aws: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": aws["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": aws["AWS_SECRET_ACCESS_KEY"],
        "region_name": aws["AWS_REGION"],
        "endpoint_url": aws["AWS_ENDPOINT_URL"],
    }


@pytest.fixture
def kafka(broker: LocalBroker) -> Kafka:
    """Topics on the session's broker (as in tests/streaming)."""
    return Kafka(broker)
