"""Kafka: a consumer that sends micro-batches through the file path, and a file producer.

``messages`` turns fetched messages into a RawBatch, ``offsets`` keeps each partition's next
offset in DuckDB (in the batch's own transaction), ``consumer`` runs the session loop and
its rebalance handling, ``producer`` sends a file's rows as JSON messages.
"""
