from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from api.auth import etag, if_match_version, requires
from api.controllers.agencies import ETAG_HEADER, IF_MATCH
from api.controllers.common import Cursor, Limit, page_out, page_request
from api.problems import CREATE, DELETE, LIST, READ, SECURED, WRITE, problems
from domain.agencies.rules import Action
from domain.approvals import schemas as s
from domain.approvals.rules import RequestStatus
from domain.approvals.service import ApprovalService, CommentService, comment_out, workflow_out
from domain.core.context import Context

RequestSort = Annotated[
    Literal["created_at", "-created_at", "updated_at", "-updated_at"] | None,
    QueryParameter(description="Sort order; '-' for descending (default -created_at)"),
]


def _client_of(request: Request[Any, Any, Any]) -> tuple[str, str]:
    host = request.client.host if request.client else ""
    return host or "", request.headers.get("user-agent", "")


class ApprovalController(Controller):
    path = "/v1"
    tags = ["Approvals"]
    security = SECURED

    # --- workflows -----------------------------------------------------------------------

    @get("/brands/{brand_id:uuid}/approval-workflow", operation_id="getApprovalWorkflow",
         summary="The brand's approval steps (404: the brand has none, posts are approved when scheduled)",
         **requires(Action.POSTS_READ), responses=problems(*READ), response_headers=ETAG_HEADER)
    async def get_workflow(self, ctx: NamedDependency[Context], brand_id: FromPath[UUID]) -> Response[s.WorkflowOut]:
        wf = await ApprovalService(ctx).get_workflow(brand_id)
        return Response(workflow_out(wf), headers={"ETag": etag(wf.version)})

    @put("/brands/{brand_id:uuid}/approval-workflow", operation_id="putApprovalWorkflow",
         summary="Set the brand's approval steps, in order (internal by role or named members, or client)",
         **requires(Action.BRANDS_WRITE, "Who must approve a brand's posts is part of the brand's setup, so it "
                    "takes brands:write (owners, admins, managers). Requests already submitted keep the steps they "
                    "were submitted with. `member_ids` are members' `user_id` (listMembers)."),
         responses=problems(*WRITE), status_code=200, response_headers=ETAG_HEADER)
    async def put_workflow(self, ctx: NamedDependency[Context], brand_id: FromPath[UUID],
                           data: JSONBody[s.WorkflowIn], request: Request[Any, Any, Any],
                           if_match: Annotated[str | None, IF_MATCH] = None) -> Response[s.WorkflowOut]:
        wf, _ = await ApprovalService(ctx).put_workflow(brand_id, data, if_match_version(request))
        return Response(workflow_out(wf), headers={"ETag": etag(wf.version)})

    @delete("/brands/{brand_id:uuid}/approval-workflow", operation_id="deleteApprovalWorkflow",
            summary="Remove the brand's workflow: posts are approved when scheduled again",
            **requires(Action.BRANDS_WRITE, "Pending requests stay and can still be decided or cancelled."),
            responses=problems(*DELETE, 412), status_code=HTTP_204_NO_CONTENT)
    async def delete_workflow(self, ctx: NamedDependency[Context], brand_id: FromPath[UUID],
                              request: Request[Any, Any, Any],
                              if_match: Annotated[str | None, IF_MATCH] = None) -> None:
        await ApprovalService(ctx).delete_workflow(brand_id, if_match_version(request))

    # --- requests ------------------------------------------------------------------------

    @post("/posts/{post_id:uuid}/submit", operation_id="submitPostForApproval",
          summary="Send the post's current revision through the brand's approval workflow",
          **requires(Action.POSTS_WRITE, "The request binds to the post's revision and content hash; the variants "
                     "go to in_review and the first step's reviewers are notified. Refused while a variant breaks "
                     "its network's rules (422 `post-not-ready`), when a request is already pending (409 "
                     "`already-in-review`) or the brand has no workflow (409 `no-approval-workflow`)."),
          responses=problems(*WRITE), status_code=HTTP_201_CREATED)
    async def submit(self, ctx: NamedDependency[Context], post_id: FromPath[UUID],
                     data: JSONBody[s.SubmitIn]) -> Response[s.RequestOut]:
        svc = ApprovalService(ctx)
        req = await svc.submit(post_id, data)
        return Response((await svc.outs([req]))[0], status_code=HTTP_201_CREATED,
                        headers={"Location": f"/v1/approval-requests/{req.id}"})

    @post("/approval-requests", operation_id="submitPostsForApproval",
          summary="Submit several posts (a month's plan) at once: all or nothing",
          **requires(Action.POSTS_WRITE, "Every post is checked first; any problem refuses the whole batch and "
                     "lists each post's problems (`errors[].field` is `post_ids[i]...`)."),
          responses=problems(*CREATE), status_code=HTTP_201_CREATED)
    async def submit_many(self, ctx: NamedDependency[Context], data: JSONBody[s.BatchSubmitIn]) -> s.RequestList:
        svc = ApprovalService(ctx)
        return s.RequestList(items=await svc.outs(await svc.submit_many(data)))

    @get("/approval-requests", operation_id="listApprovalRequests",
         summary="Approval requests, by brand, post or status; awaiting_me: those I can decide now",
         **requires(Action.POSTS_READ), responses=problems(*LIST))
    async def list_requests(
        self, ctx: NamedDependency[Context], limit: Limit = 50, cursor: Cursor = None, sort: RequestSort = None,
        brand_id: FromQuery[UUID | None] = None, post_id: FromQuery[UUID | None] = None,
        status: FromQuery[RequestStatus | None] = None, awaiting_me: FromQuery[bool] = False,
    ) -> s.RequestPage:
        page = await ApprovalService(ctx).list(page_request(limit, cursor, sort), brand_id=brand_id, post_id=post_id,
                                               status=status, awaiting_me=awaiting_me)
        return page_out(s.RequestPage, page)

    @get("/approval-requests/{request_id:uuid}", operation_id="getApprovalRequest",
         summary="One approval request with every decision (who, when, which revision, from where)",
         **requires(Action.POSTS_READ), responses=problems(*READ))
    async def get_request(self, ctx: NamedDependency[Context], request_id: FromPath[UUID]) -> s.RequestOut:
        return await ApprovalService(ctx).read(request_id)

    @post("/approval-requests/{request_id:uuid}/decisions", operation_id="decideApprovalRequest",
          summary="Approve, request changes or reject at the request's current step",
          **requires(Action.POSTS_READ, "Only a member eligible at the current step (by role or by name) may "
                     "decide: otherwise 403 `not-a-reviewer`. A comment is required to request changes or reject. "
                     "The decision records the revision it saw, the IP and the User-Agent. The last step's "
                     "approval approves the variants (or schedules them when the request says so)."),
          responses=problems(*WRITE), status_code=HTTP_201_CREATED)
    async def decide(self, ctx: NamedDependency[Context], request_id: FromPath[UUID], data: JSONBody[s.DecisionIn],
                     request: Request[Any, Any, Any]) -> s.RequestOut:
        ip, agent = _client_of(request)
        svc = ApprovalService(ctx)
        req = await svc.decide(request_id, data, ip=ip, user_agent=agent)
        return (await svc.outs([req]))[0]

    @post("/approval-requests/{request_id:uuid}/cancel", operation_id="cancelApprovalRequest",
          summary="Withdraw a pending request; the variants go back to draft", **requires(Action.POSTS_WRITE),
          responses=problems(*WRITE), status_code=200)
    async def cancel(self, ctx: NamedDependency[Context], request_id: FromPath[UUID]) -> s.RequestOut:
        svc = ApprovalService(ctx)
        req = await svc.cancel(request_id)
        return (await svc.outs([req]))[0]

    # --- comments ------------------------------------------------------------------------

    @get("/posts/{post_id:uuid}/comments", operation_id="listPostComments",
         summary="The post's comments, oldest first (threads by parent_id), internal and client-visible",
         **requires(Action.POSTS_READ), responses=problems(*LIST, 404))
    async def list_comments(self, ctx: NamedDependency[Context], post_id: FromPath[UUID], limit: Limit = 200,
                            cursor: Cursor = None) -> s.CommentPage:
        page = await CommentService(ctx).list(post_id, client_visible_only=False,
                                              page=page_request(limit, cursor))
        return page_out(s.CommentPage, page)

    @post("/posts/{post_id:uuid}/comments", operation_id="addPostComment",
          summary="Comment on a post or one variant; reply with parent_id; mention members with @[user-id]",
          **requires(Action.POSTS_READ, "Anyone who can read the post may comment (reviewers included). "
                     "`visibility: client` shows the comment on the client's share link. Mentioned members (in "
                     "`mentions` or written `@[user-id]`) must see the brand, and are notified."),
          responses=problems(*CREATE, 404), status_code=HTTP_201_CREATED)
    async def add_comment(self, ctx: NamedDependency[Context], post_id: FromPath[UUID],
                          data: JSONBody[s.CommentIn]) -> s.CommentOut:
        return comment_out(await CommentService(ctx).add(post_id, data))
