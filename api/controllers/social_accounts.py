from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED

from api.auth import provide_session, requires
from api.controllers.common import Cursor, Limit, page_out, page_request
from api.problems import CREATE, DELETE, LIST, PROBLEM_JSON, READ, SECURED, WRITE, handle_domain_error, problems
from domain.agencies.rules import Action, Principal
from domain.core.context import Context
from domain.core.errors import DomainError, NotFoundError
from domain.networks.adapters.base import Network
from domain.networks.apps import NetworkAppIn, NetworkAppList, NetworkAppOut, NetworkAppService, app_out
from domain.networks.linking import (
    AccountOut,
    AccountPage,
    LinkChoice,
    LinkingService,
    LinkOut,
    LinkStart,
    LinkStarted,
    network_settings,
    account_out,
    link_out,
    return_address,
)


def _service(ctx: Context, state: State) -> LinkingService:
    return LinkingService(ctx, state.vault, network_settings(state.settings))


class SocialAccountController(Controller):
    path = "/v1"
    tags = ["Social accounts"]
    security = SECURED

    @post("/brands/{brand_id:uuid}/social-account-links", operation_id="startSocialAccountLink",
          summary="Start linking a network account to a brand: returns the provider's authorize URL",
          **requires(Action.ACCOUNTS_WRITE, "Send the person to `authorize_url`. The provider sends them back to "
                     "Chorus's callback, which connects the account, or offers the pages, boards, channels or "
                     "organizations the login can act for (see getSocialAccountLink)."),
          responses=problems(*CREATE, 404), status_code=HTTP_201_CREATED)
    async def start_link(self, ctx: NamedDependency[Context], state: State, brand_id: FromPath[UUID],
                         data: JSONBody[LinkStart]) -> LinkStarted:
        return await _service(ctx, state).start(brand_id, data)

    @get("/social-account-links/{link_id:uuid}", operation_id="getSocialAccountLink",
         summary="A linking attempt: its status and, when several are possible, the accounts to choose from",
         **requires(Action.ACCOUNTS_READ), responses=problems(*READ))
    async def get_link(self, ctx: NamedDependency[Context], state: State, link_id: FromPath[UUID]) -> LinkOut:
        return link_out(await _service(ctx, state).get_link(link_id))

    @post("/social-account-links/{link_id:uuid}/choice", operation_id="chooseSocialAccounts",
          summary="Connect the chosen pages, boards, channels or organizations",
          **requires(Action.ACCOUNTS_WRITE), responses=problems(*WRITE), status_code=200)
    async def choose(self, ctx: NamedDependency[Context], state: State, link_id: FromPath[UUID],
                     data: JSONBody[LinkChoice]) -> AccountPage:
        accounts = await _service(ctx, state).choose(link_id, data)
        return AccountPage(items=[account_out(a) for a in accounts], next_cursor=None)

    @get("/social-accounts", operation_id="listSocialAccounts", summary="Linked accounts",
         **requires(Action.ACCOUNTS_READ), responses=problems(*LIST))
    async def list_accounts(
        self, ctx: NamedDependency[Context], state: State, limit: Limit = 50, cursor: Cursor = None,
        brand_id: FromQuery[UUID | None] = None, network: FromQuery[Network | None] = None,
        status: Annotated[str | None, QueryParameter(pattern="^(connected|needs_reconnect|revoked)$")] = None,
    ) -> AccountPage:
        page = await _service(ctx, state).list_accounts(
            page_request(limit, cursor), brand_id, network.value if network else None, status)
        return page_out(AccountPage, page)

    @get("/social-accounts/{account_id:uuid}", operation_id="getSocialAccount", summary="One linked account",
         **requires(Action.ACCOUNTS_READ), responses=problems(*READ))
    async def get_account(self, ctx: NamedDependency[Context], state: State, account_id: FromPath[UUID]) -> AccountOut:
        return account_out(await _service(ctx, state).get_account(account_id))

    @delete("/social-accounts/{account_id:uuid}", operation_id="unlinkSocialAccount",
            summary="Unlink: forget the tokens, keep the published history", **requires(Action.ACCOUNTS_WRITE),
            responses=problems(*DELETE), status_code=200)
    async def unlink(self, ctx: NamedDependency[Context], state: State, account_id: FromPath[UUID]) -> AccountOut:
        return account_out(await _service(ctx, state).unlink(account_id))


# A browser lands here: a redirect to the agency's frontend, a small self-contained HTML page,
# or JSON for a client that asks for it (both content types are in the document, see api/app.py).
_CALLBACK_RESPONSES = {
    303: ResponseSpec(data_container=None, description="Back to the `return_url` given when the link started, "
                      "with the outcome in the query", generate_examples=False),
    **{status: ResponseSpec(data_container=str, media_type="text/html", description=text, generate_examples=False)
       for status, text in {
           400: "Unknown, expired or reused state; access denied; or a malformed callback",
           402: "The agency's plan has no room for these accounts (or the brand is frozen by the plan)",
           404: "Not a network Chorus links",
           502: "The network refused or failed the code exchange",
       }.items()},
}


def _wants_json(request: Request[Any, Any, Any]) -> bool:
    accept = request.headers.get("accept", "")
    return bool(accept) and request.accept.best_match(["text/html", "application/json", PROBLEM_JSON]) in (
        "application/json", PROBLEM_JSON)


def _back(address: str) -> Response[Any]:
    return Response(None, status_code=303, headers={**_PAGE_HEADERS, "Location": address})

class NetworkAppController(Controller):
    path = "/v1/network-apps"
    tags = ["Social accounts"]
    security = SECURED

    @get("/", operation_id="listNetworkApps", summary="The agency's own network apps (never their secrets)",
         **requires(Action.AGENCY_READ), responses=problems(*LIST))
    async def list_apps(self, ctx: NamedDependency[Context], state: State) -> NetworkAppList:
        return await NetworkAppService(ctx, state.vault).list()

    @put("/{network:str}", operation_id="putNetworkApp",
         summary="Use the agency's own app on a network (bring your own app)",
         **requires(Action.AGENCY_UPDATE, "Linking and refreshing then use this app's credentials instead of "
                    "Chorus's. The secret is encrypted at rest and never returned."),
         responses=problems(*WRITE))
    async def put_app(self, ctx: NamedDependency[Context], state: State, network: FromPath[Network],
                      data: JSONBody[NetworkAppIn]) -> NetworkAppOut:
        return app_out(await NetworkAppService(ctx, state.vault).put(network, data))

    @delete("/{network:str}", operation_id="deleteNetworkApp", summary="Go back to Chorus's app on a network",
            **requires(Action.AGENCY_UPDATE), responses=problems(*DELETE), status_code=204)
    async def delete_app(self, ctx: NamedDependency[Context], state: State, network: FromPath[Network]) -> None:
        await NetworkAppService(ctx, state.vault).delete(network)


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport"
content="width=device-width,initial-scale=1"><title>{title}</title></head><body style="font-family:sans-serif;
max-width:32rem;margin:3rem auto;padding:0 1rem"><h1 style="font-size:1.3rem">{title}</h1><p>{text}</p></body></html>"""
_PAGE_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
}


class OAuthCallbackController(Controller):
    path = "/v1/oauth/callback"
    tags = ["Social accounts"]
    dependencies = {"session": Provide(provide_session)}

    @get("/{network:str}", operation_id="oauthCallback", summary="Where the networks send people back after OAuth",
         description="Opened by the person's browser. When the link was started with a `return_url`, answers 303 to "
         "that address with `link_id`, `network`, `status` (connected, awaiting_choice, denied, failed) and, on "
         "failure, `error` (the problem type's last part) in its query. Otherwise a small self-contained page, or, "
         "for a client that asks for `application/json`, the link (200) or a problem.",
         opt={"public": True, "negotiates_json": LinkOut}, media_type="text/html", responses=_CALLBACK_RESPONSES)
    async def callback(
        self, request: Request[Any, Any, Any], session: NamedDependency[Any], state: State, network: FromPath[str],
        code: FromQuery[str | None] = None,
        oauth_state: Annotated[str | None, QueryParameter(name="state", max_length=300)] = None,
        error: FromQuery[str | None] = None,
    ) -> Response[str]:  # or, negotiated, LinkOut / a problem (documented in api/app.py)
        wants_json = _wants_json(request)
        if network not in {n.value for n in Network}:
            failure = NotFoundError("This address is not a network Chorus links")
            return handle_domain_error(request, failure) if wants_json else _page(
                404, "Unknown network", "This address is not a network Chorus links.")
        ctx = Context(Principal(agency_id=_agency_of(oauth_state), label="oauth callback"), session=session)
        service = LinkingService(ctx, state.vault, network_settings(state.settings))
        try:
            link = await service.callback(network, oauth_state, code, error)
        except DomainError as err:
            if err.keep_changes:
                await session.commit()
            if service.consumed is not None and service.consumed.return_url:
                return _back(return_address(service.consumed, err))
            if wants_json:
                return handle_domain_error(request, err)
            return _page(err.status, err.title, "You can close this window and try again from Chorus.")
        await session.commit()
        if link.return_url:
            return _back(return_address(link, None))
        if wants_json:
            return Response(link_out(link), status_code=200, media_type="application/json", headers=_PAGE_HEADERS)
        if link.status == "awaiting_choice":
            return _page(200, "Almost there", "Go back to Chorus to choose which accounts to connect.")
        return _page(200, "Account connected", "You can close this window and go back to Chorus.")


def _agency_of(state: str | None) -> Any:
    from uuid import UUID as _UUID

    from domain.core.security import OpaqueToken
    from domain.networks.linking import STATE_PREFIX

    token = OpaqueToken.parse(state or "", STATE_PREFIX)
    return token.agency_id if token else _UUID(int=0)


def _page(status: int, title: str, text: str) -> Response[str]:
    return Response(_PAGE.format(title=title, text=text), status_code=status, media_type="text/html",
                    headers=_PAGE_HEADERS)
