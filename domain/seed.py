"""The demo agency `make run` sets up. Idempotent: running it again changes nothing."""

from __future__ import annotations

from datetime import date
from uuid import NAMESPACE_URL, uuid5

from sqlalchemy import select

from domain.agencies import schemas as agency_schemas
from domain.agencies.models import Agency, ApiKey, User
from domain.agencies.rules import SCOPES, Principal, Role
from domain.agencies.service import API_KEY_PREFIX, AuthService
from domain.brands import schemas as brand_schemas
from domain.brands.models import Brand, Campaign
from domain.content.models import Post
from domain.brands.rules import CampaignObjective, CampaignStatus
from domain.brands.service import BrandService, CampaignService
from domain.core.context import Context
from domain.core.db import create_engine, scoped_session, session_factory
from domain.core.security import AccessTokens, OpaqueToken, Passwords
from domain.core.settings import Settings

DEMO_AGENCY_ID = uuid5(NAMESPACE_URL, "https://chorus.dev/demo/agency")
DEMO_EMAIL = "demo@chorus.local"
DEMO_PASSWORD = "chorus-demo-password"

SOL_PROFILE = brand_schemas.BrandProfile(
    mission="Pan de verdad para el barrio, cada mañana.",
    vision="Ser la panadería de referencia del barrio de Lavapiés.",
    history="Fundada en 1962 por la familia Sol; tres generaciones de masa madre.",
    values=["artesanía", "cercanía", "producto local"],
    voice="Cálida, de barrio, nunca corporativa.",
    tone_guidelines="Tutea al cliente; frases cortas; humor suave; nada de tecnicismos.",
    do_words=["masa madre", "recién hecho", "vecinos"],
    dont_words=["industrial", "oferta flash"],
    audiences=[
        brand_schemas.Persona(name="Vecinos de siempre", description="Compran pan a diario", age_range="45-75",
                              locations=["Madrid"], interests=["tradición"]),
        brand_schemas.Persona(name="Foodies jóvenes", description="Buscan producto artesano para compartir",
                              age_range="25-40", interests=["brunch", "fotografía"]),
    ],
    swot=brand_schemas.Swot(
        strengths=["receta familiar", "ubicación"],
        weaknesses=["poca presencia online"],
        opportunities=["roscón de Reyes por encargo"],
        threats=["cadenas de panadería low-cost"],
    ),
    competitors=[brand_schemas.Competitor(name="Horno San José", handles={"instagram": "@hornosanjose"})],
    hashtag_sets=[brand_schemas.HashtagSet(name="Navidad", hashtags=["#roscon", "#navidad", "#panaderiasol"])],
)


async def seed_demo(settings: Settings) -> dict[str, str]:
    engine = create_engine(settings.app_url(), pool_size=2)
    factory = session_factory(engine)
    passwords = Passwords(settings.argon2_time_cost, settings.argon2_memory_kib)
    tokens = AccessTokens(settings.jwt_secret(), settings.access_token_ttl_seconds)
    api_key = OpaqueToken.derived(API_KEY_PREFIX, DEMO_AGENCY_ID, settings.jwt_secret(), "demo-api-key")
    try:
        async with scoped_session(factory, agency_id=DEMO_AGENCY_ID) as session, session.begin():
            if await session.get(Agency, DEMO_AGENCY_ID) is None:
                auth = AuthService(session, passwords, tokens, settings.refresh_token_ttl_seconds)
                await auth.sign_up(
                    agency_schemas.SignUp(
                        agency_name="Demo Agency", agency_slug="demo", email=DEMO_EMAIL, password=DEMO_PASSWORD,
                        name="Marta Demo", time_zone="Europe/Madrid", locale="es-ES",
                    ),
                    agency_id=DEMO_AGENCY_ID,
                )
            owner = await session.scalar(select(User).where(User.email == DEMO_EMAIL))
            assert owner is not None
            ctx = Context(Principal(agency_id=DEMO_AGENCY_ID, user_id=owner.id, role=Role.OWNER, label="seed"), session=session)
            brand = await session.scalar(select(Brand).where(Brand.agency_id == DEMO_AGENCY_ID, Brand.slug == "panaderia-sol"))
            if brand is None:
                brand = await BrandService(ctx).create(
                    brand_schemas.BrandCreate(name="Panadería Sol", slug="panaderia-sol", time_zone="Europe/Madrid",
                                              language="es-ES", profile=SOL_PROFILE)
                )
            if await session.scalar(select(Campaign.id).where(Campaign.brand_id == brand.id)) is None:
                await CampaignService(ctx).create(
                    brand_schemas.CampaignCreate(
                        brand_id=brand.id, name="Christmas roscón", objective=CampaignObjective.SALES,
                        start_date=date(2026, 12, 1), end_date=date(2027, 1, 6),
                        description="Pre-orders of roscón de Reyes",
                        target_kpis=[brand_schemas.Kpi(metric="orders", target=300)],
                        status=CampaignStatus.PLANNED,
                    )
                )
            if await session.scalar(select(Post.id).where(Post.brand_id == brand.id)) is None:
                await _seed_ideas(ctx, brand)
            if await session.scalar(select(ApiKey.id).where(ApiKey.token_hash == api_key.hashed)) is None:
                session.add(ApiKey(agency_id=DEMO_AGENCY_ID, name="Demo integration",
                                   display_prefix=api_key.value[:4] + api_key.secret[:6], token_hash=api_key.hashed,
                                   scopes=sorted(SCOPES), created_by_id=owner.id))
            return {"email": DEMO_EMAIL, "password": DEMO_PASSWORD, "api_key": api_key.value,
                    "brand_id": str(brand.id), "brand_name": brand.name}
    finally:
        await engine.dispose()


DEMO_IDEAS = [
    (2, "Roscón pre-orders open", ["roscon", "preorder"]),
    (5, "Behind the oven: the sourdough", ["behind-the-scenes"]),
    (9, "Meet Lola, our head baker", ["team"]),
    (12, "Poll: cream or no cream?", ["roscon", "poll"]),
    (16, "Last days to pre-order", ["roscon"]),
]


async def _seed_ideas(ctx: Context, brand: Brand) -> None:
    """A few planned ideas at 09:00 on the brand's clock over the coming weeks, so the demo
    calendar has something on it. They have no variants until a network account is linked."""
    from datetime import datetime, time, timedelta
    from zoneinfo import ZoneInfo

    from domain.content.schemas import PostCreate
    from domain.content.service import PostService

    zone = ZoneInfo(brand.time_zone)
    today = datetime.now(zone).date()
    campaign = await ctx.session.scalar(select(Campaign).where(Campaign.brand_id == brand.id))
    for days, title, labels in DEMO_IDEAS:
        when = datetime.combine(today + timedelta(days=days), time(9, 0), tzinfo=zone)
        await PostService(ctx).create(brand.id, PostCreate(
            title=title, labels=labels, scheduled_at=when, campaign_id=campaign.id if campaign else None))
