"""Leaving the group without hanging on brokers that do not answer.

``Consumer.close()`` revokes the partitions (the in-flight batch is written, offsets go to
Kafka) and waits for the group coordinator to let the member go. A broker that died or
stalls (a network partition: the connection open, nothing answered) never does, and the
close waited for it with the main thread inside librdkafka, where no signal handler runs: a
SIGTERM, then a second signal, did nothing until the broker came back (independent attack).
The close runs on a thread of its own instead, for at most a deadline; the main thread waits
where signals are handled. What the session stored is in DuckDB already, so leaving late, or
not at all (the group drops the member after its session timeout), changes nothing stored.
"""

from __future__ import annotations

import threading

from confluent_kafka import Consumer

LEFT_LATE = (
    "kafka: leaving the group did not finish within {:g} s (the brokers do not answer); "
    "what was stored is in DuckDB, and the group lets this member go after its session timeout"
)


def close_within(consumer: Consumer, seconds: float) -> bool:
    """Close ``consumer``; False if that did not finish within ``seconds`` (the close goes
    on in the background, on a daemon thread the process's exit does not wait for)."""
    finished = threading.Event()
    failures: list[BaseException] = []

    def close() -> None:
        try:
            consumer.close()
        except BaseException as exc:  # raised on the caller's thread below
            failures.append(exc)
        finally:
            finished.set()

    threading.Thread(target=close, name="kafka-close", daemon=True).start()
    if not finished.wait(seconds):
        return False
    if failures:
        raise failures[0]
    return True
