"""create_app(): plugins, controllers, OpenAPI, lifespan."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from litestar import Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.exceptions import TooManyRequestsException
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.openapi.spec import Components, Schema, SecurityScheme, Server, Tag
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from api.auth import authorize, provide_context
from api.controllers.agencies import AgencyController, ApiKeyController, AuditController, InvitationController, MemberController
from api.controllers.auth import AuthController, InvitationAcceptController
from api.controllers.approvals import ApprovalController
from api.controllers.brands import BrandController, CampaignController
from api.controllers.calendar import CalendarController, CalendarFeedController
from api.controllers.briefs import BriefController
from api.controllers.health import bench_select1, healthz, readyz
from api.controllers.imports import ImportController
from api.controllers.media import MEDIA_HANDLERS
from api.controllers.networks import NetworkController
from api.controllers.notifications import NotificationController
from api.controllers.posts import PostController
from api.controllers.publishing import PublishingController
from api.controllers.share_links import ShareLinkController
from api.controllers.webhooks import WebhookController
from api.controllers.billing import BillingController, StripeWebhookController
from api.controllers.social_accounts import NetworkAppController, OAuthCallbackController, SocialAccountController
from api.middleware import IdempotencyMiddleware, NulCharacterMiddleware, RequestContextMiddleware
from api.pages.share import SHARE_HANDLERS, TEMPLATES, too_many_requests
from api.problems import EXCEPTION_HANDLERS, PROBLEM_JSON
from domain.core import jobs, logs
from domain.core.db import create_engine, session_factory
from domain.core.mail import mailer_for
from domain.core.security import AccessTokens, Passwords
from domain.core.settings import Settings, get_settings
from domain.imports.service import drain as imports_drain
from workers.broker import build_broker, close_broker, sender_for

API_VERSION = "1.0.0"

TAGS = [
    Tag(name="Auth", description="Sign up, sign in, tokens"),
    Tag(name="Agency", description="The agency (tenant) you work in"),
    Tag(name="Members", description="Team members, roles, invitations"),
    Tag(name="API keys", description="Keys for integrators, scoped per area"),
    Tag(name="Brands", description="The agency's clients and what it knows about them"),
    Tag(name="Campaigns", description="Campaigns planned for a brand"),
    Tag(name="Audit", description="Who did what, when"),
    Tag(name="Networks", description="The social networks Chorus speaks to, their capabilities and limits"),
    Tag(name="Social accounts", description="Brands' accounts on the networks, linked by OAuth"),
    Tag(name="Calendar", description="The plan by day, posting slots, add to queue, iCalendar feeds, CSV export"),
    Tag(name="Media", description="Each brand's library of images and videos, and signed links to them"),
    Tag(name="Posts", description="Posts with one variant per social account, checked against each network's rules"),
    Tag(name="Imports", description="Posts in bulk from CSV or JSON: checked row by row, imported all or nothing"),
    Tag(name="Briefs", description="What the designer or video maker should make, and the media they deliver"),
    Tag(name="Share links", description="Links for clients to see posts or a calendar and comment or approve, "
        "without an account; the same data as JSON for agencies' own portals"),
    Tag(name="Billing", description="The plan, its limits and usage, the Stripe subscription (Checkout, Customer "
        "Portal, plan changes, cancelling) and Stripe's webhook"),
    Tag(name="Health", description="Liveness and readiness"),
]


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Chorus API",
        version=API_VERSION,
        description=(
            "The API for agencies that run social media for many client brands.\n\n"
            "Authenticate with `Authorization: Bearer <token>`: an access token from `signIn`, or an API key. "
            "Errors are RFC 9457 problem documents (`application/problem+json`) with a stable `type`. "
            "Lists are cursor-paginated (`limit`, `cursor`, `next_cursor`). POST accepts `Idempotency-Key`; "
            "updates accept `If-Match` with the ETag from a read."
        ),
        servers=[Server(url="/", description="This server")],
        tags=TAGS,
        path="/docs",
        render_plugins=[ScalarRenderPlugin(path="/")],
        # The documentation is public: integrators read it before they have a key.
        openapi_router=Router(path="/docs", route_handlers=[], opt={"public": True}, include_in_schema=False),
        components=Components(
            security_schemes={
                "BearerAuth": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="An access token (JWT) from signIn, or an API key (chk_...).",
                )
            }
        ),
        use_handler_docstrings=False,
    )


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    logs.configure(settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncGenerator[None, None]:
        engine = create_engine(
            settings.app_url(), pool_size=settings.db_pool_size, statement_timeout_ms=settings.db_statement_timeout_ms
        )
        app.state.engine = engine
        app.state.session_factory = session_factory(engine)
        # Background jobs buffered by requests go to this broker once they commit.
        broker = build_broker(settings)
        sender = sender_for(broker)
        app.state.broker = broker
        previous_sender = jobs.current_sender()
        jobs.use_sender(sender)
        try:
            yield
        finally:
            # In-process import jobs end (or are marked failed) before their engine goes.
            await imports_drain()
            await engine.dispose()
            if jobs.current_sender() is sender:
                jobs.use_sender(previous_sender)
            close_broker(broker)

    rate_limit = RateLimitConfig(
        rate_limit=("minute", settings.auth_rate_limit_per_minute),
        check_throttle_handler=lambda request: bool(request.route_handler.opt.get("rate_limited")),
        store="rate_limits",
    )
    share_rate_limit = RateLimitConfig(
        rate_limit=("minute", settings.share_rate_limit_per_minute),
        store="share_rate_limits",
    )
    handlers = [
        # Only the public credential routes are throttled, so the middleware sits on them alone.
        Router(path="/", route_handlers=[AuthController, InvitationAcceptController], middleware=[rate_limit.middleware]),
        AgencyController,
        MemberController,
        InvitationController,
        ApiKeyController,
        BrandController,
        CampaignController,
        AuditController,
        NetworkController,
        SocialAccountController,
        NetworkAppController,
        OAuthCallbackController,
        *MEDIA_HANDLERS,
        PostController,
        PublishingController,
        ApprovalController,
        BriefController,
        ImportController,
        CalendarController,
        CalendarFeedController,
        ShareLinkController,
        # The whole share-link space, pages and JSON, counts against one limit per client address.
        Router(path="/", route_handlers=SHARE_HANDLERS, middleware=[share_rate_limit.middleware],
               exception_handlers={TooManyRequestsException: too_many_requests}),
        NotificationController,
        WebhookController,
        BillingController,
        StripeWebhookController,
        healthz,
        readyz,
    ]
    if settings.bench_endpoints:
        handlers.append(bench_select1)
    if settings.mount_sandbox:
        handlers.append(_sandbox_mount())

    state = State(
        {
            "settings": settings,
            "tokens": AccessTokens(settings.jwt_secret(), settings.access_token_ttl_seconds),
            "passwords": Passwords(settings.argon2_time_cost, settings.argon2_memory_kib),
            # Fails at start-up, not at the first OAuth callback, when no key is configured.
            "vault": settings.vault(),
            "mailer": mailer_for(settings.smtp_url, settings.mail_from, settings.data_dir / "outbox"),
        }
    )
    app = Litestar(
        route_handlers=handlers,
        dependencies={"ctx": Provide(provide_context)},
        before_request=authorize,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[RequestContextMiddleware, NulCharacterMiddleware, IdempotencyMiddleware],
        openapi_config=openapi_config(),
        template_config=TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine),
        lifespan=[lifespan],
        state=state,
        request_max_body_size=settings.max_body_bytes,
        cors_config=CORSConfig(allow_origins=[], allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "If-Match"]),
        logging_config=None,
        debug=False,
    )
    _declare_request_bodies(app)
    _declare_closed_objects(app)
    _declare_json_alternatives(app)
    return app


def _sandbox_mount() -> Any:
    """The network sandbox inside this process, for `make run` with no internet."""
    from litestar import asgi

    from api.sandbox.app import create_sandbox_app

    sandbox = create_sandbox_app()

    @asgi("/sandbox", is_mount=True, include_in_schema=False, opt={"public": True, "sandbox": True})
    async def network_sandbox(scope: Any, receive: Any, send: Any) -> None:
        await sandbox(scope, receive, send)

    return network_sandbox


def _declare_closed_objects(app: Litestar) -> None:
    """Bodies refuse unknown fields (msgspec `forbid_unknown_fields`); say so in the
    document (`additionalProperties: false`) so generated clients and fuzzers know."""
    closed: dict[str, bool] = {}
    pending = list(msgspec.Struct.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith(("domain.", "api.")):
            closed[cls.__name__] = bool(cls.__struct_config__.forbid_unknown_fields)
    for name, component in (app.openapi_schema.components.schemas or {}).items():
        if closed.get(name) and isinstance(component, Schema):
            component.additional_properties = False


def _declare_request_bodies(app: Litestar) -> None:
    """A route that reads its body itself, in several media types (opt `request_bodies`:
    {media type: type}), documents each, with its types among the components."""
    from litestar._openapi.datastructures import OpenAPIContext
    from litestar._openapi.schema_generation.schema import SchemaCreator
    from litestar.openapi.spec import OpenAPIMediaType, RequestBody
    from litestar.typing import FieldDefinition

    components = app.openapi_schema.components.schemas
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            bodies = handler.opt.get("request_bodies")
            if not bodies:
                continue
            context = OpenAPIContext(openapi_config=app.openapi_config, plugins=app.plugins.openapi)
            creator = SchemaCreator.from_openapi_context(context, prefer_alias=True)
            refs = {media: creator.for_field_definition(FieldDefinition.from_annotation(body))
                    for media, body in bodies.items()}
            for name, schema in context.schema_registry.generate_components_schemas().items():
                existing = components.get(name)
                if existing is not None and existing.to_schema() != schema.to_schema():
                    raise RuntimeError(f"two different schemas are named {name} in the document")
                components.setdefault(name, schema)
            for method in handler.http_methods:
                operation = getattr(app.openapi_schema.paths[route.path_format], method.lower())
                operation.request_body = RequestBody(
                    required=True, content={media: OpenAPIMediaType(schema=ref) for media, ref in refs.items()})


def _declare_json_alternatives(app: Litestar) -> None:
    """A browser route that also answers JSON to clients asking for it (opt `negotiates_json`)
    documents both: its schema for 200 and the problem for each error."""
    from litestar.openapi.spec import OpenAPIMediaType, Reference

    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            body = handler.opt.get("negotiates_json")
            if body is None:
                continue
            for method in handler.http_methods:
                item = app.openapi_schema.paths[route.path_format]
                operation = getattr(item, method.lower())
                for code, response in (operation.responses or {}).items():
                    if isinstance(response, Reference) or not response.content:
                        continue
                    if code == "200":
                        response.content["application/json"] = OpenAPIMediaType(
                            schema=Reference(ref=f"#/components/schemas/{body.__name__}"))
                    elif code.startswith(("4", "5")):
                        response.content[PROBLEM_JSON] = OpenAPIMediaType(
                            schema=Reference(ref="#/components/schemas/Problem"))
