"""How each network speaks: scopes, client auth, and its error bodies (status + shape).

Sources: the providers' descriptions in the team's shared notes (X and Pinterest OpenAPI,
Meta node specs, the Threads Postman collection) and their public docs. Where the real
host is known to differ from RFC 6749 it is followed here (e.g. X says `invalid_request`
"Value passed for the token was invalid." where RFC 6749 would say `invalid_grant`).
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from litestar import Response

META = ("facebook", "instagram", "threads")

SCOPE_SEPARATOR = {"x": " ", "youtube": " ", "linkedin": " ", "facebook": ",", "instagram": ",", "tiktok": ",",
                   "threads": ",", "pinterest": ","}
CLIENT_ID_PARAM = {"tiktok": "client_key"}
PKCE_SUPPORTED = {"x", "facebook", "youtube"}  # others ignore code_challenge, like the real hosts

KNOWN_SCOPES: dict[str, frozenset[str]] = {
    "x": frozenset({
        "block.read", "bookmark.read", "bookmark.write", "dm.read", "dm.write", "follows.read", "follows.write",
        "like.read", "like.write", "list.read", "list.write", "media.write", "mute.read", "mute.write",
        "offline.access", "space.read", "timeline.read", "tweet.moderate.write", "tweet.read", "tweet.write",
        "users.read", "broadcast.read", "broadcast.write"}),
    "facebook": frozenset({
        "public_profile", "email", "pages_show_list", "pages_read_engagement", "pages_manage_posts",
        "pages_manage_engagement", "pages_manage_metadata", "pages_read_user_content", "read_insights",
        "business_management", "publish_video", "instagram_basic", "instagram_content_publish",
        "instagram_manage_comments", "instagram_manage_insights"}),
    "instagram": frozenset({
        "instagram_business_basic", "instagram_business_content_publish", "instagram_business_manage_comments",
        "instagram_business_manage_insights", "instagram_business_manage_messages"}),
    "tiktok": frozenset({"user.info.basic", "user.info.profile", "user.info.stats", "video.publish", "video.upload",
                         "video.list"}),
    "youtube": frozenset({
        "https://www.googleapis.com/auth/youtube", "https://www.googleapis.com/auth/youtube.upload",
        "https://www.googleapis.com/auth/youtube.readonly", "https://www.googleapis.com/auth/youtube.force-ssl",
        "https://www.googleapis.com/auth/yt-analytics.readonly", "https://www.googleapis.com/auth/userinfo.email",
        "https://www.googleapis.com/auth/userinfo.profile", "openid", "email", "profile"}),
    "linkedin": frozenset({
        "openid", "profile", "email", "w_member_social", "r_organization_social", "w_organization_social",
        "rw_organization_admin", "r_organization_admin", "r_basicprofile", "r_member_social"}),
    "threads": frozenset({
        "threads_basic", "threads_content_publish", "threads_manage_replies", "threads_read_replies",
        "threads_manage_insights", "threads_keyword_search", "threads_manage_mentions", "threads_delete",
        "threads_location_tagging", "threads_profile_discovery"}),
    "pinterest": frozenset({
        "ads:read", "ads:write", "billing:read", "billing:write", "biz_access:read", "biz_access:write",
        "boards:read", "boards:read_secret", "boards:write", "boards:write_secret", "catalogs:read",
        "catalogs:write", "pins:read", "pins:read_secret", "pins:write", "pins:write_secret",
        "user_accounts:read", "user_accounts:write"}),
}
SCOPE_REQUIRED = {"x", "youtube", "linkedin", "tiktok", "pinterest", "instagram", "threads"}

# Token answers: how the `scope` field is joined.
TOKEN_SCOPE_JOIN = {"x": " ", "youtube": " ", "linkedin": ",", "tiktok": ",", "pinterest": ","}


def log_id() -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(10).upper()


def fbtrace() -> str:
    return secrets.token_urlsafe(8)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None,
                  media_type: str = "application/json") -> Response:
    content = b"" if body is None else json.dumps(body).encode()
    return Response(content=content, status_code=status, media_type=media_type, headers=headers or {})


def meta_error(message: str, code: int, *, subcode: int | None = None, status: int = 400,
               type_: str = "OAuthException", headers: dict[str, str] | None = None, transient: bool | None = None) -> Response:
    err: dict[str, Any] = {"message": message, "type": type_, "code": code}
    if subcode is not None:
        err["error_subcode"] = subcode
    if transient is not None:
        err["is_transient"] = transient
    err["fbtrace_id"] = fbtrace()
    h = dict(headers or {})
    if code == 190:
        h.setdefault("WWW-Authenticate", f'OAuth "Facebook Platform" "invalid_token" "{message}"')
    return json_response({"error": err}, status, h)


def x_problem(status: int, title: str, detail: str | None = None, headers: dict[str, str] | None = None) -> Response:
    return json_response({"title": title, "type": "about:blank", "status": status, "detail": detail or title}, status,
                         headers, media_type="application/problem+json")


def google_api_error(status: int, message: str, reason: str, status_text: str, domain: str = "global",
                     extra: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> Response:
    e: dict[str, Any] = {"message": message, "domain": domain, "reason": reason}
    e.update(extra or {})
    return json_response({"error": {"code": status, "message": message, "errors": [e], "status": status_text}},
                         status, headers)


def linkedin_error(status: int, message: str, *, service_code: int | None = None, code: str | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"status": status}
    if service_code is not None:
        body["serviceErrorCode"] = service_code
    if code:
        body["code"] = code
    body["message"] = message
    return json_response(body, status, headers)


def tiktok_api_error(status: int, code: str, message: str) -> Response:
    return json_response({"data": {}, "error": {"code": code, "message": message, "log_id": log_id()}}, status)


def pinterest_error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"code": code, "message": message}, status, headers)


def oauth2_error(error: str, description: str, status: int = 400, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": error, "error_description": description}, status, headers)


# --- token endpoint errors ----------------------------------------------------------------

# reason: invalid_client | missing_client_auth | bad_code | used_code | expired_code | redirect_mismatch |
#         pkce_missing | pkce_mismatch | bad_refresh | reused_refresh | unsupported_grant | missing_param |
#         refresh_not_allowed

def token_error(network: str, reason: str, detail: str = "", *, host: str = "token") -> Response:
    n = network
    code_reasons = {"bad_code", "used_code", "expired_code", "redirect_mismatch", "pkce_missing", "pkce_mismatch"}
    refresh_reasons = {"bad_refresh", "reused_refresh", "refresh_not_allowed"}
    if n == "x":
        if reason in ("invalid_client", "missing_client_auth"):
            return oauth2_error("unauthorized_client", "Missing valid authorization header", 401)
        if reason in code_reasons:
            return oauth2_error("invalid_request", "Value passed for the authorization code was invalid.")
        if reason in refresh_reasons:
            return oauth2_error("invalid_request", "Value passed for the token was invalid.")
        if reason == "unsupported_grant":
            return oauth2_error("invalid_request", "Value passed for the grant type was invalid.")
        return oauth2_error("invalid_request", detail or "Missing required parameter.")
    if n == "youtube":
        if reason == "invalid_client":
            return oauth2_error("invalid_client", detail or "Unauthorized", 401)
        if reason == "missing_client_auth":
            return oauth2_error("invalid_request", "Could not determine client ID from request.")
        if reason == "redirect_mismatch":
            return oauth2_error("redirect_uri_mismatch", "Bad Request")
        if reason == "pkce_missing":
            return oauth2_error("invalid_grant", "Missing code verifier.")
        if reason == "pkce_mismatch":
            return oauth2_error("invalid_grant", "Invalid code verifier.")
        if reason in code_reasons:
            return oauth2_error("invalid_grant", "Bad Request")
        if reason in refresh_reasons:
            return oauth2_error("invalid_grant", "Token has been expired or revoked.")
        if reason == "unsupported_grant":
            return oauth2_error("unsupported_grant_type", f"Invalid grant_type: {detail}")
        return oauth2_error("invalid_request", detail or "Missing required parameter.")
    if n == "linkedin":
        if reason in ("invalid_client", "missing_client_auth"):
            return oauth2_error("invalid_client", "Client authentication failed", 401)
        if reason in code_reasons:
            return oauth2_error("invalid_request", "Unable to retrieve access token: appid/redirect uri/code verifier does "
                                "not match authorization code. Or authorization code expired. Or external member binding exists")
        if reason == "refresh_not_allowed":
            return oauth2_error("unauthorized_client", "Refresh tokens are not enabled for this application")
        if reason in refresh_reasons:
            return oauth2_error("invalid_grant", "The provided refresh token is invalid, expired or revoked")
        if reason == "unsupported_grant":
            return oauth2_error("unsupported_grant_type", f"Unsupported grant type: {detail}")
        return oauth2_error("invalid_request", detail or "A required parameter is missing")
    if n == "tiktok":
        lid = log_id()
        if reason in ("invalid_client", "missing_client_auth"):
            return json_response({"error": "invalid_client", "error_description": "Client key or secret is incorrect.",
                                  "log_id": lid}, 401)
        if reason == "expired_code":
            return json_response({"error": "invalid_grant", "error_description": "Authorization code is expired.",
                                  "log_id": lid}, 400)
        if reason in code_reasons:
            return json_response({"error": "invalid_grant", "error_description": "Authorization code is invalid.",
                                  "log_id": lid}, 400)
        if reason in refresh_reasons:
            return json_response({"error": "invalid_grant", "error_description": "Refresh token is invalid or expired.",
                                  "log_id": lid}, 400)
        if reason == "unsupported_grant":
            return json_response({"error": "unsupported_grant_type", "error_description": "Grant type is not supported.",
                                  "log_id": lid}, 400)
        return json_response({"error": "invalid_request", "error_description": detail or "The request parameters are malformed.",
                              "log_id": lid}, 400)
    if n == "pinterest":
        if reason in ("invalid_client", "missing_client_auth"):
            return pinterest_error(401, 2, "Authentication failed.")
        if reason in code_reasons:
            return pinterest_error(400, 1, "Invalid authorization code")
        if reason in refresh_reasons:
            return pinterest_error(400, 1, "Invalid refresh token")
        if reason == "unsupported_grant":
            return pinterest_error(400, 1, f"Invalid grant_type: {detail}")
        return pinterest_error(400, 1, detail or "Invalid parameters")
    if n == "instagram" and host == "token":
        # api.instagram.com still answers in the legacy shape
        msg = {
            "invalid_client": "Invalid platform app", "missing_client_auth": "Missing required field client_id",
            "used_code": "This authorization code has been used", "expired_code": "This authorization code has expired",
            "redirect_mismatch": "Error validating verification code. Please make sure your redirect_uri is identical "
                                 "to the one you used in the OAuth dialog request",
            "unsupported_grant": "Invalid grant_type",
        }.get(reason, detail or "Invalid authorization code")
        return json_response({"error_type": "OAuthException", "code": 400, "error_message": msg}, 400)
    # Meta Graph (facebook, threads; graph.instagram.com)
    if reason == "invalid_client":
        if detail == "secret":
            return meta_error("Error validating client secret.", 1)
        return meta_error("Error validating application. Invalid application ID.", 101)
    if reason == "missing_client_auth":
        return meta_error("Missing client_id parameter.", 101)
    if reason == "used_code":
        return meta_error("This authorization code has been used.", 100, subcode=36009)
    if reason == "expired_code":
        return meta_error("This authorization code has expired.", 100, subcode=36007)
    if reason == "redirect_mismatch":
        return meta_error("Error validating verification code. Please make sure your redirect_uri is identical to the "
                          "one you used in the OAuth dialog request", 100, subcode=36008)
    if reason in ("pkce_missing", "pkce_mismatch"):
        return meta_error("Invalid code verifier.", 100)
    if reason == "bad_code":
        return meta_error("Invalid verification code format.", 100)
    if reason in ("bad_refresh", "reused_refresh", "refresh_not_allowed"):
        return meta_error(detail or "Error validating access token: the session is invalid.", 190)
    if reason == "unsupported_grant":
        return meta_error("Unsupported grant_type.", 100)
    return meta_error(detail or "Missing required parameter.", 100)


# --- API auth errors (profile, pages, boards...) --------------------------------------------

def api_auth_error(network: str, status: str) -> Response:
    """status: missing | invalid | expired | revoked."""
    n = network
    if n == "x":
        return x_problem(401, "Unauthorized", "Unauthorized")
    if n in META:
        if status == "missing":
            return meta_error("An active access token must be used to query information about the current user.", 2500)
        if status == "expired":
            return meta_error("Error validating access token: Session has expired.", 190, subcode=463)
        if status == "revoked":
            return meta_error("Error validating access token: The user has not authorized application.", 190, subcode=458)
        return meta_error("Invalid OAuth access token - Cannot parse access token", 190)
    if n == "tiktok":
        return tiktok_api_error(401, "access_token_invalid", "The access token is invalid or not found in the request.")
    if n == "youtube":
        return google_api_error(
            401, "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
            "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
            "authError", "UNAUTHENTICATED", extra={"location": "Authorization", "locationType": "header"},
            headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"'})
    if n == "linkedin":
        if status == "expired":
            return linkedin_error(401, "The token used in the request has expired", service_code=65602,
                                  code="EXPIRED_ACCESS_TOKEN")
        if status == "revoked":
            return linkedin_error(401, "The token used in the request has been revoked by the user", service_code=65601,
                                  code="REVOKED_ACCESS_TOKEN")
        return linkedin_error(401, "Invalid access token", service_code=65600, code="INVALID_ACCESS_TOKEN")
    if n == "pinterest":
        return pinterest_error(401, 2, "Authentication failed.")
    raise ValueError(n)


def api_forbidden(network: str, what: str) -> Response:
    """The token is fine but lacks a scope."""
    n = network
    if n == "x":
        return x_problem(403, "Forbidden", f"Missing scope for {what}")
    if n in META:
        return meta_error(f"(#200) Requires permission for {what}", 200, type_="OAuthException", status=403)
    if n == "tiktok":
        return tiktok_api_error(401, "scope_not_authorized",
                                "The user did not authorize the scope required for completing this request.")
    if n == "youtube":
        return google_api_error(403, "Request had insufficient authentication scopes.", "insufficientPermissions",
                                "PERMISSION_DENIED")
    if n == "linkedin":
        return linkedin_error(403, f"Not enough permissions to access: {what}", service_code=100, code="ACCESS_DENIED")
    if n == "pinterest":
        return pinterest_error(403, 29, "You are not permitted to access that resource.")
    raise ValueError(n)


def status_error(network: str, status: int, *, api: bool, retry_after: float = 900.0,
                 limit: int = 100) -> Response:
    """The provider's real body for an injected status (429, 5xx, others)."""
    n = network
    if status == 401 and api:
        return api_auth_error(n, "invalid")
    reset = int(time.time() + retry_after)
    if n == "x":
        if status == 429:
            return x_problem(429, "Too Many Requests", "Too Many Requests", headers={
                "x-rate-limit-limit": str(limit), "x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)})
        titles = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
                  400: "Bad Request", 403: "Forbidden", 404: "Not Found"}
        return x_problem(status, titles.get(status, "Error"))
    if n in META:
        usage = json.dumps({"call_count": 100, "total_cputime": 20, "total_time": 25})
        if status == 429:
            return meta_error("(#4) Application request limit reached", 4, status=status, type_="OAuthException",
                              headers={"X-App-Usage": usage}, transient=True)
        if status >= 500:
            return meta_error("An unexpected error has occurred. Please retry your request later.", 2, status=status,
                              transient=True)
        return meta_error("An unknown error has occurred.", 1, status=status)
    if n == "tiktok":
        if not api:
            err = "rate_limit_exceeded" if status == 429 else "server_error"
            return json_response({"error": err, "error_description": "Please retry later.", "log_id": log_id()}, status)
        if status == 429:
            return tiktok_api_error(429, "rate_limit_exceeded", "API rate limit was exceeded.")
        return tiktok_api_error(status, "internal_error", "Something went wrong. Please try again later.")
    if n == "youtube":
        if status == 429:
            return google_api_error(429, "Resource has been exhausted (e.g. check quota).", "rateLimitExceeded",
                                    "RESOURCE_EXHAUSTED", domain="usageLimits")
        if status == 403:
            return google_api_error(403, "The request cannot be completed because you have exceeded your quota.",
                                    "quotaExceeded", "PERMISSION_DENIED", domain="youtube.quota")
        if status >= 500:
            return google_api_error(status, "The service is currently unavailable.", "backendError", "UNAVAILABLE")
        return google_api_error(status, "Bad Request", "badRequest", "INVALID_ARGUMENT")
    if n == "linkedin":
        if status == 429:
            return linkedin_error(429, "Resource level throttle limit for calls to this resource is reached.")
        return linkedin_error(status, "Internal Server Error" if status >= 500 else "Bad Request")
    if n == "pinterest":
        if status == 429:
            return pinterest_error(429, 8, "You have exceeded your rate limit. Try again later.")
        if status >= 500:
            return pinterest_error(status, 3, "Something went wrong on our end. Sorry about that.")
        return pinterest_error(status, 1, "Invalid parameters.")
    raise ValueError(n)


def not_found(network: str, path: str) -> Response:
    if network == "x":
        return x_problem(404, "Not Found", f"Sorry, that page does not exist: {path}")
    if network in META:
        return meta_error(f"Unknown path components: {path}", 2500, status=400)
    if network == "tiktok":
        return tiktok_api_error(404, "not_found", f"Unknown path: {path}")
    if network == "youtube":
        return google_api_error(404, f"Not Found: {path}", "notFound", "NOT_FOUND")
    if network == "linkedin":
        return linkedin_error(404, f"No virtual resource found: {path}")
    return pinterest_error(404, 404, f"Not found: {path}")
