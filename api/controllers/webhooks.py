"""Outbound webhooks for integrators: endpoints, their signing secrets, deliveries, replay."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from api.auth import requires
from api.controllers.common import Cursor, Limit, page_out, page_request
from api.problems import CREATE, DELETE, LIST, READ, SECURED, WRITE, problems
from domain.agencies.rules import Action
from domain.core.context import Context
from domain.webhooks import schemas as s
from domain.webhooks.service import WebhookService, catalog

_SECRET_ONCE = "The signing secret (whsec_...) is in this response only; Chorus keeps it encrypted."


def _service(ctx: Context, state: State) -> WebhookService:
    return WebhookService(ctx, state.settings)


class WebhookController(Controller):
    path = "/v1"
    tags = ["Webhooks"]
    security = SECURED

    @get("/webhook-event-types", operation_id="listWebhookEventTypes", summary="The events an endpoint may receive",
         **requires(Action.WEBHOOKS_READ), responses=problems(400, 401, 402, 403, 429))
    async def event_types(self, ctx: NamedDependency[Context]) -> s.WebhookEventCatalog:
        ctx.require(Action.WEBHOOKS_READ)
        return catalog()

    @post("/webhook-endpoints", operation_id="createWebhookEndpoint",
          summary="Register an endpoint (https; private and loopback addresses are refused)",
          **requires(Action.WEBHOOKS_MANAGE, _SECRET_ONCE), responses=problems(*CREATE), status_code=HTTP_201_CREATED)
    async def create_endpoint(self, ctx: NamedDependency[Context], state: State,
                              data: JSONBody[s.WebhookEndpointCreate]) -> Response[s.WebhookEndpointCreated]:
        created = await _service(ctx, state).create(data)
        return Response(created, status_code=HTTP_201_CREATED, headers={"Location": f"/v1/webhook-endpoints/{created.id}"})

    @get("/webhook-endpoints", operation_id="listWebhookEndpoints", summary="The agency's webhook endpoints",
         **requires(Action.WEBHOOKS_READ), responses=problems(*LIST))
    async def list_endpoints(self, ctx: NamedDependency[Context], state: State, limit: Limit = 50,
                             cursor: Cursor = None) -> s.WebhookEndpointPage:
        return page_out(s.WebhookEndpointPage, await _service(ctx, state).list(page_request(limit, cursor)))

    @get("/webhook-endpoints/{endpoint_id:uuid}", operation_id="getWebhookEndpoint", summary="One webhook endpoint",
         **requires(Action.WEBHOOKS_READ), responses=problems(*READ))
    async def get_endpoint(self, ctx: NamedDependency[Context], state: State,
                           endpoint_id: FromPath[UUID]) -> s.WebhookEndpointOut:
        return await _service(ctx, state).read(endpoint_id)

    @patch("/webhook-endpoints/{endpoint_id:uuid}", operation_id="updateWebhookEndpoint",
           summary="Change an endpoint's URL, events, description or active flag",
           **requires(Action.WEBHOOKS_MANAGE), responses=problems(*WRITE))
    async def update_endpoint(self, ctx: NamedDependency[Context], state: State, endpoint_id: FromPath[UUID],
                              data: JSONBody[s.WebhookEndpointUpdate]) -> s.WebhookEndpointOut:
        return await _service(ctx, state).update(endpoint_id, data)

    @delete("/webhook-endpoints/{endpoint_id:uuid}", operation_id="deleteWebhookEndpoint",
            summary="Delete an endpoint and its delivery log", **requires(Action.WEBHOOKS_MANAGE),
            responses=problems(*DELETE), status_code=HTTP_204_NO_CONTENT)
    async def delete_endpoint(self, ctx: NamedDependency[Context], state: State, endpoint_id: FromPath[UUID]) -> None:
        await _service(ctx, state).delete(endpoint_id)

    @post("/webhook-endpoints/{endpoint_id:uuid}/rotate-secret", operation_id="rotateWebhookSecret",
          summary="Replace the signing secret (the old one stops signing at once)",
          **requires(Action.WEBHOOKS_MANAGE, _SECRET_ONCE), responses=problems(*READ), status_code=200)
    async def rotate_secret(self, ctx: NamedDependency[Context], state: State,
                            endpoint_id: FromPath[UUID]) -> s.WebhookSigningSecretOut:
        return await _service(ctx, state).rotate_secret(endpoint_id)

    @post("/webhook-endpoints/{endpoint_id:uuid}/test", operation_id="testWebhookEndpoint",
          summary="Send a `ping` event to this endpoint", **requires(Action.WEBHOOKS_MANAGE),
          responses=problems(*READ), status_code=HTTP_202_ACCEPTED)
    async def test_endpoint(self, ctx: NamedDependency[Context], state: State,
                            endpoint_id: FromPath[UUID]) -> s.WebhookDeliveryOut:
        return await _service(ctx, state).ping(endpoint_id)

    @get("/webhook-endpoints/{endpoint_id:uuid}/deliveries", operation_id="listWebhookDeliveries",
         summary="An endpoint's deliveries, newest first, each with its attempts",
         **requires(Action.WEBHOOKS_READ), responses=problems(*READ, 422))
    async def list_deliveries(self, ctx: NamedDependency[Context], state: State, endpoint_id: FromPath[UUID],
                              limit: Limit = 50, cursor: Cursor = None) -> s.WebhookDeliveryPage:
        return page_out(s.WebhookDeliveryPage,
                        await _service(ctx, state).deliveries(endpoint_id, page_request(limit, cursor)))

    @get("/webhook-deliveries/{delivery_id:uuid}", operation_id="getWebhookDelivery",
         summary="One delivery with its attempts", **requires(Action.WEBHOOKS_READ), responses=problems(*READ))
    async def get_delivery(self, ctx: NamedDependency[Context], state: State,
                           delivery_id: FromPath[UUID]) -> s.WebhookDeliveryOut:
        return await _service(ctx, state).delivery(delivery_id)

    @post("/webhook-deliveries/{delivery_id:uuid}/replay", operation_id="replayWebhookDelivery",
          summary="Send the delivery's event again, as a new delivery", **requires(Action.WEBHOOKS_MANAGE),
          responses=problems(*READ), status_code=HTTP_202_ACCEPTED)
    async def replay(self, ctx: NamedDependency[Context], state: State,
                     delivery_id: FromPath[UUID]) -> s.WebhookDeliveryOut:
        return await _service(ctx, state).replay(delivery_id)
