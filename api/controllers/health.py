from __future__ import annotations

import asyncio

from litestar import Response, get
from litestar.datastructures import State
from sqlalchemy import text

from api.problems import problems, problem_response


@get("/healthz", operation_id="getHealth", summary="The process is up", tags=["Health"], opt={"public": True} )
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", operation_id="getReadiness", summary="The database answers", tags=["Health"], opt={"public": True},
     responses=problems(503))
async def readyz(state: State) -> Response[dict[str, str]]:
    try:
        async with asyncio.timeout(2):
            async with state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure means not ready
        return problem_response(None, status=503, slug="unavailable", title="Service unavailable",
                                detail="The database is not reachable")  # type: ignore[return-value]
    return Response({"status": "ready"})


@get("/bench/select1", include_in_schema=False, opt={"public": True, "bench": True})
async def bench_select1(state: State) -> dict[str, int]:
    """The benchmark's ceiling: one SELECT 1 on the same pool, no auth. Mounted only for bench."""
    async with state.engine.connect() as conn:
        value = (await conn.execute(text("SELECT 1"))).scalar_one()
    return {"value": value}
