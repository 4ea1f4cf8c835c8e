"""Outgoing email. SMTP when CHORUS_SMTP_URL is set; otherwise an outbox folder of .eml
files, so local development sends nothing anywhere yet shows every message."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    text: str
    # With an HTML part the message is multipart/alternative (text first, HTML preferred).
    html: str | None = None


class Mailer(Protocol):
    async def send(self, email: Email) -> None: ...


def _message(email: Email, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email.to
    # A header never carries a line break, whatever a title held.
    message["Subject"] = " ".join(email.subject.split())
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].strip(">"))
    message.set_content(email.text)
    if email.html is not None:
        message.add_alternative(email.html, subtype="html")
    return message


@dataclass(frozen=True)
class SmtpMailer:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    use_ssl: bool = False
    timeout: float = 10.0
    # A private relay's CA (PEM); the system's trust store otherwise. Certificates are
    # always verified.
    cafile: str | None = None

    @classmethod
    def from_url(cls, url: str, sender: str) -> SmtpMailer:
        """smtp://user:pass@host:587?starttls=1, or smtps://host:465; `timeout` (seconds, each
        SMTP call) and `cafile` in the query too."""
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or (465 if parts.scheme == "smtps" else 25),
            sender=sender,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            starttls=query.get("starttls", "0") in {"1", "true", "yes"},
            use_ssl=parts.scheme == "smtps",
            timeout=float(query.get("timeout", "10")),
            cafile=query.get("cafile") or None,
        )

    def _send_sync(self, email: Email) -> None:
        context = ssl.create_default_context(cafile=self.cafile)
        client_cls = smtplib.SMTP_SSL if self.use_ssl else smtplib.SMTP
        kwargs = {"context": context} if self.use_ssl else {}
        with client_cls(self.host, self.port, timeout=self.timeout, **kwargs) as client:
            if self.starttls:
                client.starttls(context=context)
            if self.username:
                client.login(self.username, self.password or "")
            client.send_message(_message(email, self.sender))

    async def send(self, email: Email) -> None:
        await asyncio.to_thread(self._send_sync, email)


@dataclass(frozen=True)
class OutboxMailer:
    folder: Path
    sender: str

    async def send(self, email: Email) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{time.time_ns()}.eml"
        path.write_bytes(bytes(_message(email, self.sender)))
        path.chmod(0o600)


def mailer_for(smtp_url: str | None, sender: str, outbox: Path) -> Mailer:
    return SmtpMailer.from_url(smtp_url, sender) if smtp_url else OutboxMailer(outbox, sender)
