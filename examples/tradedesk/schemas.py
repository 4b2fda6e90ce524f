"""Request and response bodies."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PartnerIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["buyer", "seller", "both"]


class PartnerOut(PartnerIn):
    model_config = ConfigDict(from_attributes=True)
    id: int


class AvailabilityIn(BaseModel):
    partner_id: int
    commodity: str = Field(min_length=1, max_length=64)
    quantity: Decimal = Field(gt=0)
    price: Decimal = Field(gt=0)
    location: str = Field(min_length=1, max_length=120)


class AvailabilityOut(AvailabilityIn):
    model_config = ConfigDict(from_attributes=True)
    id: int


class RequirementIn(BaseModel):
    partner_id: int
    commodity: str = Field(min_length=1, max_length=64)
    quantity: Decimal = Field(gt=0)
    max_price: Decimal = Field(gt=0)
    location: str = Field(min_length=1, max_length=120)


class RequirementOut(RequirementIn):
    model_config = ConfigDict(from_attributes=True)
    id: int


class MatchIn(BaseModel):
    availability_id: int
    requirement_id: int
    quantity: Decimal = Field(gt=0)


class MatchOut(MatchIn):
    model_config = ConfigDict(from_attributes=True)
    id: int
    price: Decimal
