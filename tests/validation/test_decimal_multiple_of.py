"""``multiple_of`` on a Decimal, as Pydantic judges it in Python's 28-digit decimal context:
a quotient of more than 28 whole digits fails even for an exact multiple, and one whose
rounding to 28 digits hides its fraction passes. Huge values of every scale and steps of
every size, compared with ``model_validate`` (found by an independent parity attack:
``10**29`` was stored valid where Pydantic says multiple_of)."""

from __future__ import annotations

from decimal import Decimal, localcontext
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError, create_model

import engine


def verdicts(model: type[BaseModel], values: list[str]) -> list[list[str] | None]:
    out: list[list[str] | None] = []
    for value in values:
        try:
            model.model_validate({"d": value})
            out.append(None)
        except ValidationError as exc:
            out.append([e["type"] for e in exc.errors()])
    return out


@settings(max_examples=40, deadline=None)
@given(
    coefficient=st.integers(1, 999),
    exponent=st.integers(-3, 2),
    scale=st.integers(0, 4),
    data=st.data(),
)
def test_huge_values_get_pydantics_multiple_of(
    coefficient: int, exponent: int, scale: int, data: st.DataObject
) -> None:
    step = Decimal(coefficient).scaleb(exponent)
    constraints: Any = Field(decimal_places=scale, multiple_of=step)  # type: ignore[call-overload]
    model = create_model("Stepped", d=(Decimal, constraints))
    whole = st.integers(0, 10 ** (37 - scale))
    numbers = data.draw(st.lists(st.tuples(whole, st.booleans(), st.booleans()), max_size=30))
    values = []
    for n, multiple, negative in numbers:
        value = Decimal(n).scaleb(-scale)
        if multiple:  # an exact multiple near it
            with localcontext(prec=80):
                value = (value // step) * step
        if negative:
            value = -value
        values.append(format(value, "f"))
    with localcontext(prec=80):
        values += [format(step * Decimal(10) ** k, "f") for k in (26, 27, 28, 29)]
    values = [v for v in values if len(v.replace("-", "").replace(".", "")) <= 38]
    found = engine.validate([{"d": v} for v in values], model)
    errors = {r["row_number"]: [e["type"] for e in r["errors"]] for r in found.invalid.to_dicts()}
    got = [errors.get(n) for n in range(1, len(values) + 1)]
    want = verdicts(model, values)
    assert got == want


def test_the_reported_values() -> None:
    constraints: Any = Field(decimal_places=0, multiple_of=Decimal(5))  # type: ignore[call-overload]
    model = create_model("Fives", d=(Decimal, constraints))
    values = [str(10**29), str(5 * 10**28), str(5 * 10**28 - 5), "9752011361168651313540929996"]
    assert verdicts(model, values) == [["multiple_of"], ["multiple_of"], None, None]
    found = engine.validate([{"d": v} for v in values], model)
    assert found.invalid["row_number"].to_list() == [1, 2]
