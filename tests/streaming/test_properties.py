"""Kafka client settings from a Java properties file (``--kafka-config-file``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli.options import bootstrap, kafka_properties
from engine.errors import ConfigError
from engine.streaming.properties import load_properties, parse_properties
from tests.conftest import ROOT

CLIENT_PROPERTIES = r"""# Confluent Cloud's client.properties, as downloaded
bootstrap.servers=pkc-123.europe-west1.gcp.confluent.cloud:9092
security.protocol=SASL_SSL
sasl.mechanisms=PLAIN
sasl.username = ABCDEF
sasl.password: s3cr3t=with=equals
! another comment style
   client.id   ingest-engine
session.timeout.ms=45000
long.value=first \
           second
escaped\=key=x
tab=a\tb
unicode=caf\u00e9
trailing.backslash=C:\\temp\\
empty=
"""


def test_the_java_properties_grammar(tmp_path: Path) -> None:
    path = tmp_path / "client.properties"
    path.write_text(CLIENT_PROPERTIES)
    assert load_properties(path) == {
        "bootstrap.servers": "pkc-123.europe-west1.gcp.confluent.cloud:9092",
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "PLAIN",
        "sasl.username": "ABCDEF",
        "sasl.password": "s3cr3t=with=equals",
        "client.id": "ingest-engine",
        "session.timeout.ms": "45000",
        "long.value": "first second",
        "escaped=key": "x",
        "tab": "a\tb",
        "unicode": "café",
        "trailing.backslash": "C:\\temp\\",
        "empty": "",
    }


def test_a_malformed_escape_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.properties"
    with pytest.raises(ConfigError) as raised:
        parse_properties("a=1\nb=\\u12\n", path)
    assert str(raised.value) == f"{path}, line 2: malformed \\uXXXX escape"
    with pytest.raises(ConfigError) as raised:
        load_properties(tmp_path / "none.properties")
    assert (
        str(raised.value)
        == f"{tmp_path / 'none.properties'}: cannot be read (No such file or directory)"
    )


def test_the_command_line_wins_and_bootstrap_comes_from_either(tmp_path: Path) -> None:
    path = tmp_path / "c.properties"
    path.write_text("bootstrap.servers=a:9092\nsasl.username=file\nclient.id=x\n")
    merged = kafka_properties(path, ("sasl.username=cli",))
    assert merged == {"bootstrap.servers": "a:9092", "sasl.username": "cli", "client.id": "x"}
    assert bootstrap(None, merged) == "a:9092"
    assert merged == {"sasl.username": "cli", "client.id": "x"}  # taken out: not overridable
    assert bootstrap("a:9092", {"bootstrap.servers": "a:9092"}) == "a:9092"
    with pytest.raises(ConfigError) as raised:
        bootstrap("b:9092", {"bootstrap.servers": "a:9092"})
    assert str(raised.value) == (
        "--bootstrap-servers b:9092 differs from bootstrap.servers=a:9092 in "
        "--kafka-config-file; give one"
    )
    with pytest.raises(ConfigError) as raised:
        bootstrap(None, {})
    assert str(raised.value) == (
        "give --bootstrap-servers, or bootstrap.servers in the --kafka-config-file"
    )


def test_consume_passes_the_file_to_librdkafka(tmp_path: Path) -> None:
    """A property librdkafka does not know, from the file only: its own error says it
    reached the client (no broker needed to find out)."""
    path = tmp_path / "client.properties"
    path.write_text("bootstrap.servers=127.0.0.1:1\nno.such.property=1\n")
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "cli.py"),
            "consume",
            "--topic",
            "t",
            "--group",
            "g",
            "--db",
            str(tmp_path / "k.duckdb"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "INGEST_KAFKA_CONFIG_FILE": str(path)},
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        'error: invalid Kafka configuration: No such configuration property: "no.such.property"'
    )
