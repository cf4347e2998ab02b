"""The hard workload of bench_validation.py: a 13-field model of mixed types and dirty rows.

Like real exports: about two thirds of the rows are invalid, the errors spread over nine
fields (bad patterns, out-of-range numbers and dates, unparsable values, unknown enum
values, broken UUIDs, missing required cells), and valid values come in several lax forms
(padded numbers, ``yes``/``0`` booleans, offsets and ``Z`` on datetimes, empty optional
cells). The data is generated once with a fixed seed and cached as a CSV file.
"""

from __future__ import annotations

import csv
import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Literal
from uuid import UUID

import numpy as np
from pydantic import BaseModel, Field

SEED = 12
COLUMNS = [
    "shipment_id",
    "customer",
    "parcels",
    "weight_kg",
    "declared_value",
    "ship_date",
    "created_at",
    "insured",
    "carrier",
    "service",
    "tracking_uuid",
    "note",
    "delivered_at",
]


class Carrier(StrEnum):
    DHL = "dhl"
    UPS = "ups"
    FEDEX = "fedex"
    POST = "post"


class Shipment(BaseModel):
    """A parcel shipment as exported by a warehouse system."""

    shipment_id: str = Field(pattern=r"^SHP-[0-9]{6}$")
    customer: str = Field(min_length=2, max_length=40)
    parcels: int = Field(ge=1, le=50)
    weight_kg: float = Field(gt=0, le=1000)
    declared_value: Decimal = Field(max_digits=10, decimal_places=2, ge=0)
    ship_date: date = Field(ge=date(2020, 1, 1), le=date(2030, 12, 31))
    created_at: datetime
    insured: bool = False
    carrier: Carrier
    service: Literal["standard", "express", "overnight"] = "standard"
    tracking_uuid: UUID
    note: str | None = None
    delivered_at: datetime | None = None


# Per field: the share of rows given a bad value, and the bad values (chosen uniformly).
BAD: dict[str, tuple[float, list[str]]] = {
    "shipment_id": (0.12, ["SHP-12", "shp-000123", "SHP-0000001", ""]),
    "customer": (0.08, ["X", "", "A" * 41]),
    "parcels": (0.12, ["0", "51", "many", "2.5", "-1"]),
    "weight_kg": (0.12, ["-1.5", "0", "heavy", "1e4", "nan"]),
    "declared_value": (0.12, ["12.345", "-5.00", "1e12", "abc"]),
    "ship_date": (0.12, ["2019-12-31", "2031-01-01", "2024-02-30", "soon"]),
    "created_at": (0.08, ["2024-13-01T00:00:00", "yesterday", "2024-05-01T25:00:00"]),
    "carrier": (0.1, ["DHL", "usps", " ups"]),
    "tracking_uuid": (0.1, ["not-a-uuid", "1234", "g" * 32]),
}
NAMES = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Barbara Liskov"]
BOOLS = ["true", "false", "yes", "no", "1", "0", ""]
SERVICES = ["standard", "express", "overnight", ""]
NOTES = ["", "", "", "fragile", "leave at door", " call first "]


def _good(rng: np.random.Generator, rows: int) -> dict[str, list[str]]:
    days = rng.integers(0, 3650, rows)
    seconds = rng.integers(0, 86400, rows)
    start = np.datetime64("2020-01-01")
    dates = (start + days.astype("timedelta64[D]")).astype(str)
    clock = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in seconds.tolist()]
    suffix = np.array(["", "", "Z", "+02:00"])[rng.integers(0, 4, rows)]
    created = [
        f"{d}T{c}{z}" for d, c, z in zip(dates.tolist(), clock, suffix.tolist(), strict=True)
    ]
    delivered = np.where(rng.random(rows) < 0.7, "", np.array(created, dtype=object))
    return {
        "shipment_id": [f"SHP-{n:06d}" for n in rng.integers(0, 1_000_000, rows).tolist()],
        "customer": np.array(NAMES)[rng.integers(0, len(NAMES), rows)].tolist(),
        "parcels": [f" {n}" if n % 7 == 0 else str(n) for n in rng.integers(1, 51, rows).tolist()],
        "weight_kg": [f"{w:.2f}" for w in rng.uniform(0.1, 999.0, rows).tolist()],
        "declared_value": [f"{v:.2f}" for v in rng.uniform(0, 50_000, rows).tolist()],
        "ship_date": dates.tolist(),
        "created_at": created,
        "insured": np.array(BOOLS)[rng.integers(0, len(BOOLS), rows)].tolist(),
        "carrier": np.array([c.value for c in Carrier])[rng.integers(0, 4, rows)].tolist(),
        "service": np.array(SERVICES)[rng.integers(0, len(SERVICES), rows)].tolist(),
        "tracking_uuid": [
            str(uuid.UUID(int=int(n), version=4)) for n in rng.integers(0, 2**62, rows)
        ],
        "note": np.array(NOTES)[rng.integers(0, len(NOTES), rows)].tolist(),
        "delivered_at": delivered.tolist(),
    }


def write_dirty(path: Path, rows: int) -> None:
    """``rows`` shipments, about two thirds of them invalid, as CSV (fixed seed)."""
    rng = np.random.default_rng(SEED)
    columns = _good(rng, rows)
    for name, (share, values) in BAD.items():
        hit = np.flatnonzero(rng.random(rows) < share)
        picks = rng.integers(0, len(values), len(hit))
        column = columns[name]
        for i, pick in zip(hit.tolist(), picks.tolist(), strict=True):
            column[i] = values[pick]
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(zip(*(columns[c] for c in COLUMNS), strict=True))
    tmp.replace(path)


def read_rows(path: Path, rows: int) -> list[dict[str, str]]:
    """The first ``rows`` records as ``model_validate`` gets them: empty cells absent."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return [
            {k: v for k, v in row.items() if v != ""}
            for _, row in zip(range(rows), reader, strict=False)
        ]
