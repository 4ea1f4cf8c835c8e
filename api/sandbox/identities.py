"""Test identities: everything about a sandbox login is derived from (network, name).

Conventions (documented in README.md):
- the default identity of every network is ``alice``;
- ``alice`` can act for 3 things (pages, boards, organisations), any other name for 2,
  a name starting with ``empty`` for none (no pages, no boards, no channel, no orgs);
- an Instagram name starting with ``creator`` is a MEDIA_CREATOR account, others BUSINESS.
Ids are stable digests of the name, so the same identity always has the same ids.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

DEFAULT_IDENTITY = "alice"
IDENTITY_RE = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
MEDIA_HOST = "https://sandbox.example"  # reserved domain: never resolves to anything real


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(parts).encode()).digest()


def digits(n: int, *parts: str) -> str:
    """n decimal digits, first digit not zero, stable for the given parts."""
    value = int.from_bytes(_digest(*parts), "big")
    s = str(value)[: n - 1]
    return str(1 + value % 9) + s.rjust(n - 1, "0")


def alnum(n: int, *parts: str) -> str:
    import base64

    return base64.b32encode(_digest(*parts)).decode().lower()[:n]


def title(identity: str) -> str:
    return re.sub(r"[_.-]+", " ", identity).title()


def owned_count(identity: str) -> int:
    if identity.lower().startswith("empty"):
        return 0
    return 3 if identity == DEFAULT_IDENTITY else 2


def username(identity: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", identity).lower()


def avatar(network: str, ident: str) -> str:
    return f"{MEDIA_HOST}/{network}/avatars/{ident}.jpg"


# --- per network ------------------------------------------------------------------------

def x_user(identity: str) -> dict[str, Any]:
    uid = digits(19, "x", identity)
    return {"id": uid, "name": f"{title(identity)} Sandbox", "username": username(identity),
            "profile_image_url": avatar("x", uid) + "?size=normal", "created_at": "2020-01-01T00:00:00.000Z",
            "description": f"Sandbox account {identity}", "verified": False, "protected": False}


FB_PAGE_KINDS = (
    ("Bakery", "Bakery", ["ADVERTISE", "ANALYZE", "CREATE_CONTENT", "MESSAGING", "MODERATE", "MANAGE"]),
    ("Books", "Book store", ["ADVERTISE", "ANALYZE", "CREATE_CONTENT", "MESSAGING", "MODERATE"]),
    ("Cycling Club", "Sports club", ["ANALYZE"]),
)


def facebook_user(identity: str) -> dict[str, Any]:
    uid = digits(16, "facebook", identity)
    return {"id": uid, "name": f"{title(identity)} Sandbox", "first_name": title(identity), "last_name": "Sandbox",
            "email": f"{username(identity)}@sandbox.example",
            "picture": {"data": {"height": 50, "width": 50, "is_silhouette": False, "url": avatar("facebook", uid)}}}


def facebook_pages(identity: str) -> list[dict[str, Any]]:
    pages = []
    for i in range(owned_count(identity)):
        suffix, category, tasks = FB_PAGE_KINDS[i]
        pid = digits(15, "facebook-page", identity, str(i))
        pages.append({"id": pid, "name": f"{title(identity)} {suffix}", "category": category,
                      "category_list": [{"id": digits(15, "fb-cat", category), "name": category}],
                      "tasks": list(tasks), "username": f"{username(identity)}{suffix.lower().replace(' ', '')}",
                      "link": f"https://www.facebook.com/{pid}",
                      # `picture` in `fields` expands the Page picture edge, as on Graph.
                      "picture": {"data": {"height": 50, "width": 50, "is_silhouette": False,
                                           "url": avatar("facebook", pid)}}})
    return pages


def instagram_user(identity: str) -> dict[str, Any]:
    user_id = int(digits(17, "instagram-ig-id", identity))
    scoped = digits(16, "instagram", identity)
    return {"id": scoped, "user_id": user_id, "username": username(identity), "name": f"{title(identity)} Sandbox",
            "account_type": "MEDIA_CREATOR" if identity.lower().startswith("creator") else "BUSINESS",
            "profile_picture_url": avatar("instagram", scoped), "followers_count": 120, "follows_count": 80,
            "media_count": 12, "biography": f"Sandbox account {identity}", "website": "https://sandbox.example"}


def tiktok_user(identity: str) -> dict[str, Any]:
    open_id = str(uuid.UUID(bytes=_digest("tiktok-open", identity)[:16]))
    union_id = str(uuid.UUID(bytes=_digest("tiktok-union", identity)[:16]))
    return {"open_id": open_id, "union_id": union_id, "avatar_url": avatar("tiktok", open_id),
            "avatar_url_100": avatar("tiktok", open_id) + "?s=100", "avatar_large_url": avatar("tiktok", open_id) + "?s=720",
            "display_name": f"{title(identity)} Sandbox", "username": username(identity),
            "bio_description": f"Sandbox account {identity}", "profile_deep_link": f"https://www.tiktok.com/@{username(identity)}",
            "is_verified": False, "follower_count": 10, "following_count": 5, "likes_count": 42, "video_count": 3}


def youtube_channel(identity: str) -> dict[str, Any] | None:
    if owned_count(identity) == 0:
        return None
    import base64

    cid = "UC" + base64.urlsafe_b64encode(_digest("youtube", identity)).decode()[:22]
    thumbs = {size: {"url": avatar("youtube", cid) + f"?s={px}", "width": px, "height": px}
              for size, px in (("default", 88), ("medium", 240), ("high", 800))}
    t = f"{title(identity)} Sandbox"
    return {"kind": "youtube#channel", "etag": alnum(27, "yt-etag", cid), "id": cid,
            "snippet": {"title": t, "description": f"Sandbox channel {identity}", "customUrl": f"@{username(identity)}",
                        "publishedAt": "2020-01-01T00:00:00Z", "thumbnails": thumbs,
                        "localized": {"title": t, "description": f"Sandbox channel {identity}"}}}


LINKEDIN_ROLES = ("ADMINISTRATOR", "CONTENT_ADMINISTRATOR", "ANALYST")


def linkedin_member(identity: str) -> dict[str, Any]:
    sub = alnum(10, "linkedin", identity)
    return {"sub": sub, "email_verified": True, "name": f"{title(identity)} Sandbox", "locale": {"country": "US", "language": "en"},
            "given_name": title(identity), "family_name": "Sandbox", "email": f"{username(identity)}@sandbox.example",
            "picture": avatar("linkedin", sub)}


def linkedin_orgs(identity: str) -> list[dict[str, Any]]:
    orgs = []
    for i in range(owned_count(identity)):
        oid = int(digits(8, "linkedin-org", identity, str(i)))
        orgs.append({"id": oid, "localizedName": f"{title(identity)} Org {i + 1}",
                     "vanityName": f"{username(identity)}-org-{i + 1}", "role": LINKEDIN_ROLES[i]})
    return orgs


def threads_user(identity: str) -> dict[str, Any]:
    uid = digits(17, "threads", identity)
    return {"id": uid, "username": username(identity), "name": f"{title(identity)} Sandbox",
            "threads_profile_picture_url": avatar("threads", uid), "threads_biography": f"Sandbox account {identity}"}


def pinterest_user(identity: str) -> dict[str, Any]:
    uid = digits(18, "pinterest", identity)
    return {"account_type": "BUSINESS", "id": uid, "profile_image": avatar("pinterest", uid),
            "website_url": "https://sandbox.example", "username": username(identity),
            "about": f"Sandbox account {identity}", "business_name": f"{title(identity)} Sandbox",
            "board_count": owned_count(identity), "pin_count": 0, "follower_count": 10, "following_count": 5,
            "monthly_views": 100}


PINTEREST_BOARDS = (("Recipes", "PUBLIC"), ("Travel", "PUBLIC"), ("Drafts", "SECRET"))


def pinterest_boards(identity: str) -> list[dict[str, Any]]:
    boards = []
    for i in range(owned_count(identity)):
        name, privacy = PINTEREST_BOARDS[i]
        boards.append({"id": digits(18, "pinterest-board", identity, str(i)), "name": f"{title(identity)} {name}",
                       "description": f"Sandbox board {name}", "privacy": privacy,
                       "owner": {"username": username(identity)}, "created_at": "2020-01-01T00:00:00",
                       "board_pins_modified_at": "2020-01-01T00:00:00.000000", "collaborator_count": 0,
                       "follower_count": 0, "pin_count": 0, "is_ads_only": False,
                       "media": {"image_cover_url": None, "pin_thumbnail_urls": []}})
    return boards


def summary(network: str, identity: str) -> dict[str, Any]:
    """What the sandbox will show for this identity (for tests and the control API)."""
    n = network
    if n == "x":
        return {"user": x_user(identity)}
    if n == "facebook":
        return {"user": facebook_user(identity), "pages": facebook_pages(identity)}
    if n == "instagram":
        return {"user": instagram_user(identity)}
    if n == "tiktok":
        return {"user": tiktok_user(identity)}
    if n == "youtube":
        return {"channel": youtube_channel(identity)}
    if n == "linkedin":
        return {"member": linkedin_member(identity), "organizations": linkedin_orgs(identity)}
    if n == "threads":
        return {"user": threads_user(identity)}
    if n == "pinterest":
        return {"user": pinterest_user(identity), "boards": pinterest_boards(identity)}
    raise ValueError(n)
