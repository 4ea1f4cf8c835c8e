from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from litestar.di import NamedDependency
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from api.auth import etag, if_match_version, requires
from api.controllers.agencies import ETAG_HEADER, IF_MATCH
from api.controllers.common import Cursor, Limit, page_out, page_request
from api.problems import CREATE, DELETE, LIST, READ, SECURED, WRITE, problems
from domain.agencies.rules import Action
from domain.brands import schemas as s
from domain.brands.rules import BrandStatus, CampaignStatus
from domain.brands.service import BrandService, CampaignService, brand_out, campaign_out, publishing_pause_out
from domain.core.context import Context
from domain.publishing.pause import PublishingPauseService

BrandSort = Annotated[
    Literal["name", "-name", "created_at", "-created_at"] | None,
    QueryParameter(description="Sort order; '-' for descending (default name)"),
]
CampaignSort = Annotated[
    Literal["start_date", "-start_date", "name", "-name", "created_at", "-created_at"] | None,
    QueryParameter(description="Sort order; '-' for descending (default start_date)"),
]


class BrandController(Controller):
    path = "/v1/brands"
    tags = ["Brands"]
    security = SECURED

    @get("/", operation_id="listBrands", summary="Brands (clients) of the agency", **requires(Action.BRANDS_READ),
         responses=problems(*LIST))
    async def list_brands(
        self, ctx: NamedDependency[Context], limit: Limit = 50, cursor: Cursor = None, sort: BrandSort = None,
        status: FromQuery[BrandStatus | None] = None,
        q: Annotated[str | None, QueryParameter(max_length=100, description="Part of the name")] = None,
    ) -> s.BrandPage:
        return page_out(s.BrandPage, await BrandService(ctx).list(page_request(limit, cursor, sort), status, q))

    @post("/", operation_id="createBrand", summary="Add a brand with its profile", **requires(Action.BRANDS_WRITE),
          responses=problems(*CREATE), status_code=HTTP_201_CREATED, response_headers=ETAG_HEADER)
    async def create_brand(self, ctx: NamedDependency[Context], data: JSONBody[s.BrandCreate]) -> Response[s.BrandOut]:
        brand = await BrandService(ctx).create(data)
        return Response(brand_out(brand), status_code=HTTP_201_CREATED, headers={
            "ETag": etag(brand.version), "Location": f"/v1/brands/{brand.id}"})

    @get("/{brand_id:uuid}", operation_id="getBrand", summary="One brand with its profile",
         **requires(Action.BRANDS_READ), responses=problems(*READ), response_headers=ETAG_HEADER)
    async def get_brand(self, ctx: NamedDependency[Context], brand_id: FromPath[UUID]) -> Response[s.BrandOut]:
        brand = await BrandService(ctx).read(brand_id)
        return Response(brand, headers={"ETag": etag(brand.version)})

    @patch("/{brand_id:uuid}", operation_id="updateBrand",
           summary="Update a brand; profile fields given replace those parts; status archives",
           **requires(Action.BRANDS_WRITE), responses=problems(*WRITE), response_headers=ETAG_HEADER)
    async def update_brand(
        self, ctx: NamedDependency[Context], brand_id: FromPath[UUID], data: JSONBody[s.BrandUpdate], request: Request[Any, Any, Any],
        if_match: Annotated[str | None, IF_MATCH] = None,
    ) -> Response[s.BrandOut]:
        brand = await BrandService(ctx).update(brand_id, data, if_match_version(request))
        return Response(brand_out(brand), headers={"ETag": etag(brand.version)})

    @post("/{brand_id:uuid}/publishing/pause", operation_id="pauseBrandPublishing",
          summary="Pause the brand's publishing: due posts wait (held) until it resumes; sends in flight finish",
          **requires(Action.BRANDS_WRITE), responses=problems(*WRITE), status_code=200, response_headers=ETAG_HEADER)
    async def pause_publishing(
        self, ctx: NamedDependency[Context], brand_id: FromPath[UUID], data: JSONBody[s.PauseIn],
        request: Request[Any, Any, Any], if_match: Annotated[str | None, IF_MATCH] = None,
    ) -> Response[s.BrandOut]:
        brand = await PublishingPauseService(ctx).pause(brand_id, data.reason, if_match_version(request))
        return Response(brand_out(brand), headers={"ETag": etag(brand.version)})

    @post("/{brand_id:uuid}/publishing/resume", operation_id="resumeBrandPublishing",
          summary="Resume the brand's publishing: held posts go out now, late from the resume",
          **requires(Action.BRANDS_WRITE), responses=problems(*WRITE), status_code=200, response_headers=ETAG_HEADER)
    async def resume_publishing(
        self, ctx: NamedDependency[Context], brand_id: FromPath[UUID], request: Request[Any, Any, Any],
        if_match: Annotated[str | None, IF_MATCH] = None,
    ) -> Response[s.BrandOut]:
        brand = await PublishingPauseService(ctx).resume(brand_id, if_match_version(request))
        return Response(brand_out(brand), headers={"ETag": etag(brand.version)})

    @get("/{brand_id:uuid}/publishing", operation_id="getBrandPublishing",
         summary="The brand's publishing state: its pause, and the variants held by it with their due times",
         **requires(Action.POSTS_READ), responses=problems(*READ), response_headers=ETAG_HEADER)
    async def get_publishing(self, ctx: NamedDependency[Context],
                             brand_id: FromPath[UUID]) -> Response[s.PublishingReport]:
        brand, held, count = await PublishingPauseService(ctx).report(brand_id)
        pause = publishing_pause_out(brand)
        return Response(s.PublishingReport(
            brand_id=brand.id, paused=pause is not None, pause=pause, held_count=count,
            held=[s.HeldVariantOut(variant_id=h.variant_id, post_id=h.post_id, network=h.network,
                                   social_account_id=h.social_account_id, due_at=h.due_at) for h in held]),
            headers={"ETag": etag(brand.version)})


class CampaignController(Controller):
    path = "/v1/campaigns"
    tags = ["Campaigns"]
    security = SECURED

    @get("/", operation_id="listCampaigns", summary="Campaigns, filtered by brand, status or date",
         **requires(Action.CAMPAIGNS_READ), responses=problems(*LIST))
    async def list_campaigns(
        self, ctx: NamedDependency[Context], limit: Limit = 50, cursor: Cursor = None, sort: CampaignSort = None,
        brand_id: FromQuery[UUID | None] = None, status: FromQuery[CampaignStatus | None] = None,
        active_on: Annotated[date | None, QueryParameter(description="Only campaigns running on this day")] = None,
    ) -> s.CampaignPage:
        page = await CampaignService(ctx).list(page_request(limit, cursor, sort), brand_id, status, active_on)
        return page_out(s.CampaignPage, page)

    @post("/", operation_id="createCampaign", summary="Plan a campaign for a brand",
          **requires(Action.CAMPAIGNS_WRITE), responses=problems(*CREATE), status_code=HTTP_201_CREATED,
          response_headers=ETAG_HEADER)
    async def create_campaign(self, ctx: NamedDependency[Context], data: JSONBody[s.CampaignCreate]) -> Response[s.CampaignOut]:
        campaign = await CampaignService(ctx).create(data)
        return Response(campaign_out(campaign), status_code=HTTP_201_CREATED, headers={
            "ETag": etag(campaign.version), "Location": f"/v1/campaigns/{campaign.id}"})

    @get("/{campaign_id:uuid}", operation_id="getCampaign", summary="One campaign",
         **requires(Action.CAMPAIGNS_READ), responses=problems(*READ), response_headers=ETAG_HEADER)
    async def get_campaign(self, ctx: NamedDependency[Context], campaign_id: FromPath[UUID]) -> Response[s.CampaignOut]:
        campaign = await CampaignService(ctx).get(campaign_id)
        return Response(campaign_out(campaign), headers={"ETag": etag(campaign.version)})

    @patch("/{campaign_id:uuid}", operation_id="updateCampaign", summary="Update a campaign",
           **requires(Action.CAMPAIGNS_WRITE), responses=problems(*WRITE), response_headers=ETAG_HEADER)
    async def update_campaign(
        self, ctx: NamedDependency[Context], campaign_id: FromPath[UUID], data: JSONBody[s.CampaignUpdate], request: Request[Any, Any, Any],
        if_match: Annotated[str | None, IF_MATCH] = None,
    ) -> Response[s.CampaignOut]:
        campaign = await CampaignService(ctx).update(campaign_id, data, if_match_version(request))
        return Response(campaign_out(campaign), headers={"ETag": etag(campaign.version)})

    @delete("/{campaign_id:uuid}", operation_id="deleteCampaign", summary="Delete a campaign",
            **requires(Action.CAMPAIGNS_WRITE), responses=problems(*DELETE), status_code=HTTP_204_NO_CONTENT)
    async def delete_campaign(self, ctx: NamedDependency[Context], campaign_id: FromPath[UUID]) -> None:
        await CampaignService(ctx).delete(campaign_id)
