from __future__ import annotations

from typing import Annotated, Any

from litestar.params import QueryParameter

from domain.core.pagination import PageRequest

Limit = Annotated[int, QueryParameter(ge=1, le=200, description="Page size (at most 200)")]
Cursor = Annotated[
    str | None, QueryParameter(max_length=500, description="`next_cursor` from the previous page; omit for the first page")
]


def page_request(limit: int, cursor: str | None, sort: str | None = None) -> PageRequest:
    return PageRequest(limit=limit, cursor=cursor, sort=sort)


def page_out(page_type: Any, page: Any) -> Any:
    return page_type(items=page.items, next_cursor=page.next_cursor)
