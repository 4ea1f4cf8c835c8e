"""Keyset (cursor) pagination: stable under inserts, cheap on large tables."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

import msgspec
from sqlalchemy import Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from domain.core.errors import ValidationFailedError

T = TypeVar("T")


@dataclass(frozen=True)
class Sort:
    """One sort order a list offers: `name` or `-name` in the query string."""

    key: str
    column: InstrumentedAttribute[Any]
    id_column: InstrumentedAttribute[Any]
    descending: bool = False


@dataclass(frozen=True)
class PageRequest:
    limit: int
    cursor: str | None = None
    sort: str | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def resolve_sort(sorts: dict[str, tuple[InstrumentedAttribute[Any], InstrumentedAttribute[Any]]], value: str) -> Sort:
    descending = value.startswith("-")
    key = value.lstrip("-")
    if key not in sorts:
        allowed = ", ".join(sorted(sorts) + sorted(f"-{k}" for k in sorts))
        raise ValidationFailedError.field("sort", f"Unknown sort {value!r}; use one of: {allowed}")
    column, id_column = sorts[key]
    return Sort(value, column, id_column, descending)


def _encode(sort: Sort, value: Any, row_id: UUID) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = msgspec.json.encode([sort.key, value, str(row_id)])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(sort: Sort, cursor: str) -> tuple[Any, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key, value, row_id = msgspec.json.decode(raw)
        if key != sort.key:
            raise ValueError("sort changed")
        python_type = sort.column.type.python_type
        if python_type is datetime:
            value = datetime.fromisoformat(value)
        elif not isinstance(value, python_type):
            raise ValueError("bad value")
        return value, UUID(row_id)
    except (ValueError, TypeError, msgspec.DecodeError, NotImplementedError):
        raise ValidationFailedError.field("cursor", "The cursor is not valid for this list and sort order") from None


async def paginate(
    session: AsyncSession | None, stmt: Select[Any], sort: Sort, page: PageRequest, *, rows: Any = None
) -> Page[Any]:
    """ORM objects through `session`, or Core rows through `rows` (an async callable
    that executes a statement, such as Context.read) for hot read paths."""
    keys = tuple_(sort.column, sort.id_column)
    if page.cursor:
        value, row_id = _decode(sort, page.cursor)
        stmt = stmt.where(keys < tuple_(value, row_id) if sort.descending else keys > tuple_(value, row_id))
    order = (sort.column.desc(), sort.id_column.desc()) if sort.descending else (sort.column, sort.id_column)
    stmt = stmt.order_by(*order).limit(page.limit + 1)
    found = list((await rows(stmt)).all() if rows is not None else (await session.scalars(stmt)).all())  # type: ignore[union-attr]
    next_cursor = None
    if len(found) > page.limit:
        found = found[: page.limit]
        last = found[-1]
        next_cursor = _encode(sort, getattr(last, sort.column.key), getattr(last, sort.id_column.key))
    return Page(found, next_cursor)
