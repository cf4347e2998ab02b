"""The HTTP API (FastAPI, served by uvicorn): ingest, summary, runs, exports, health, metrics.

``app.create_app`` builds the application from one ``ApiSettings``; its lifespan opens the
server's single DuckDB connection (``database``) and, when asked, runs the Kafka consumer
beside the request handlers (``consumer``). Routers: ``ingest`` (with ``uploads`` and
``paths``), ``reports`` (summary and runs), ``exports`` and ``health`` (health and metrics).
"""
