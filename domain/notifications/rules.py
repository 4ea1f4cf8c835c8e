"""What a notification email says: a plain-text and an HTML part per kind. Pure: no I/O.
Everything that came from people (titles, bodies, names) is escaped in the HTML part."""

from __future__ import annotations

from html import escape
from typing import Any
from uuid import UUID

from domain.core.mail import Email

# kind -> (lead sentence, button label)
KINDS: dict[str, tuple[str, str]] = {
    "approval.requested": ("Your approval is requested on a post.", "Review the post"),
    "approval.decided": ("An approval request was decided.", "Open the post"),
    "approval.changes_requested": ("Changes were requested on a post.", "See the requested changes"),
    "comment.mention": ("You were mentioned in a comment.", "Read the comment"),
}
DEFAULT_KIND = ("You have a new notification.", "Open Chorus")


def post_link(data: dict[str, Any], frontend_base_url: str | None) -> str | None:
    """The post in the agency's web app, when a base URL is configured and the
    notification names a post (a UUID: nothing else reaches the link)."""
    if not frontend_base_url or not frontend_base_url.startswith(("https://", "http://")):
        return None
    try:
        post_id = UUID(str(data.get("post_id")))
    except ValueError:
        return None
    return f"{frontend_base_url.rstrip('/')}/posts/{post_id}"


def render_email(*, to: str, recipient_name: str, agency_name: str, kind: str, title: str, body: str,
                 data: dict[str, Any], frontend_base_url: str | None) -> Email:
    lead, label = KINDS.get(kind, DEFAULT_KIND)
    link = post_link(data, frontend_base_url)
    footer = f"You receive this because you are a member of {agency_name} on Chorus."
    text_lines = [f"Hello {recipient_name},", "", lead, "", title]
    if body:
        text_lines += ["", body]
    if link:
        text_lines += ["", f"{label}: {link}"]
    text_lines += ["", "--", footer]

    paragraphs = [f"<p>Hello {escape(recipient_name)},</p>", f"<p>{escape(lead)}</p>",
                  f"<h2 style=\"font-size:18px\">{escape(title)}</h2>"]
    if body:
        paragraphs.append("<p>" + "<br>".join(escape(line) for line in body.splitlines()) + "</p>")
    if link:
        paragraphs.append(f"<p><a href=\"{escape(link, quote=True)}\">{escape(label)}</a></p>")
    paragraphs.append(f"<hr><p style=\"color:#666;font-size:12px\">{escape(footer)}</p>")
    html = ("<!doctype html><html><body style=\"font-family:sans-serif\">" + "".join(paragraphs)
            + "</body></html>")
    return Email(to=to, subject=f"[{agency_name}] {title}", text="\n".join(text_lines) + "\n", html=html)
