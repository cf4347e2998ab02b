"""Reading the DuckDB file back: summaries, SQL, exports, the HTML report."""
