"""Business tables (SQLAlchemy 2). Tether's own tables come from its migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import DateTime, ForeignKey, Numeric, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Partner(Base):
    __tablename__ = "td_partners"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # "buyer" | "seller" | "both"
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Availability(Base):
    """What a seller offers."""

    __tablename__ = "td_availabilities"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("td_partners.id"))
    commodity: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 3))
    price: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    location: Mapped[str] = mapped_column(String(120))
    posted_by: Mapped[str] = mapped_column(String(64))  # the principal, for ":own" checks


class Requirement(Base):
    """What a buyer needs."""

    __tablename__ = "td_requirements"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("td_partners.id"))
    commodity: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 3))
    max_price: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    location: Mapped[str] = mapped_column(String(120))


class Match(Base):
    __tablename__ = "td_matches"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    availability_id: Mapped[int] = mapped_column(ForeignKey("td_availabilities.id"))
    requirement_id: Mapped[int] = mapped_column(ForeignKey("td_requirements.id"))
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 3))
    price: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
