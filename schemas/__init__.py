"""Pydantic models the engine validates against; ``cli.py schema list`` shows them."""
