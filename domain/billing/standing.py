"""Load an agency's billing standing inside the current transaction (one indexed read)."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.billing.models import BillingAccount
from domain.billing.rules import Standing, standing
from domain.core.clock import now


async def load_standing(session: AsyncSession, agency_id: UUID) -> Standing:
    account = await session.scalar(select(BillingAccount).where(BillingAccount.agency_id == agency_id))
    return standing(account, now())
