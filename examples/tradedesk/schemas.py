"""Request and response bodies.

Requests are checked against what the columns can hold (``models.py``), so nothing that passes
validation fails in the database: ids fit ``integer``, decimals fit their ``numeric(p, s)``
exactly (no rounding: ``1.005`` is refused for a price, not stored as ``1.01``), and text
holds no NUL, which PostgreSQL cannot store. Responses carry decimals at the column's scale,
so the answer to a write is exactly what a later read returns.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

INT4_MAX = 2_147_483_647
NO_NUL = r"^[^\x00]*$"

RowId = Annotated[int, Field(ge=1, le=INT4_MAX)]


def _text(max_length: int) -> object:
    return Field(min_length=1, max_length=max_length, pattern=NO_NUL)


def _amount(whole: int, places: int) -> tuple[object, ...]:
    """A positive ``numeric(whole + places, places)``: validation, and the documented form
    (a decimal string; JSON numbers are accepted too, but a float cannot promise exactness)."""
    above_one = rf"[1-9][0-9]{{0,{whole - 1}}}(\.[0-9]{{1,{places}}})?"
    below_one = rf"0\.[0-9]{{0,{places - 1}}}[1-9]"
    pattern = f"^({above_one}|{below_one})$"
    return (
        Field(gt=0, max_digits=whole + places, decimal_places=places),
        WithJsonSchema({"type": "string", "pattern": pattern}, mode="validation"),
    )


def _at_scale(places: int) -> AfterValidator:
    step = Decimal(1).scaleb(-places)
    return AfterValidator(lambda value: value.quantize(step))


Quantity = Annotated[Decimal, *_amount(11, 3)]
Price = Annotated[Decimal, *_amount(12, 2)]
StoredQuantity = Annotated[Decimal, _at_scale(3)]
StoredPrice = Annotated[Decimal, _at_scale(2)]
Name = Annotated[str, _text(200)]
Commodity = Annotated[str, _text(64)]
Location = Annotated[str, _text(120)]


class PartnerIn(BaseModel):
    name: Name
    kind: Literal["buyer", "seller", "both"]


class PartnerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    kind: str


class AvailabilityIn(BaseModel):
    partner_id: RowId
    commodity: Commodity
    quantity: Quantity
    price: Price
    location: Location


class AvailabilityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    partner_id: int
    commodity: str
    quantity: StoredQuantity  # what is left: zero once matched in full
    price: StoredPrice
    location: str


class AvailabilityEdit(BaseModel):
    price: Price | None = None
    quantity: Quantity | None = None


class RequirementIn(BaseModel):
    partner_id: RowId
    commodity: Commodity
    quantity: Quantity
    max_price: Price
    location: Location


class RequirementOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    partner_id: int
    commodity: str
    quantity: StoredQuantity
    max_price: StoredPrice
    location: str


class MatchIn(BaseModel):
    availability_id: RowId
    requirement_id: RowId
    quantity: Quantity


class MatchOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    availability_id: int
    requirement_id: int
    quantity: StoredQuantity
    price: StoredPrice
