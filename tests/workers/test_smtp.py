"""The SMTP sender against real aiosmtpd servers on loopback: STARTTLS and implicit TLS with
a certificate the client verifies, credentials checked by the server, and a timeout on a
server that never answers."""

from __future__ import annotations

import datetime as dt
import ipaddress
import smtplib
import socket
import ssl
from pathlib import Path

import pytest

from domain.core.mail import Email, SmtpMailer


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        from email import message_from_bytes, policy

        self.messages.append((session.authenticated, message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


def _authenticator(server, session, envelope, mechanism, auth_data):
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"chorus", b"p@ss:word")
    return AuthResult(success=ok)


@pytest.fixture
def tls_files(tmp_path):
    return _certificate(tmp_path)


def _server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


EMAIL = Email(to="someone@example.test", subject="Hello", text="plain body", html="<p>html body</p>")


async def test_starttls_with_credentials(tls_files):
    from aiosmtpd.controller import Controller

    cert, key = tls_files
    inbox, port = _Inbox(), _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=_server_context(cert, key),
                            require_starttls=True, authenticator=_authenticator, auth_require_tls=True)
    controller.start()
    try:
        url = f"smtp://chorus:p%40ss%3Aword@127.0.0.1:{port}?starttls=1&timeout=5&cafile={cert}"
        await SmtpMailer.from_url(url, "Chorus <no-reply@chorus.test>").send(EMAIL)
        [(authenticated, message)] = inbox.messages
        assert authenticated is True
        assert message.get_body(("plain",)).get_content().strip() == "plain body"
        assert message.get_body(("html",)).get_content().strip() == "<p>html body</p>"
        # Wrong credentials are refused, and nothing is delivered.
        bad = f"smtp://chorus:wrong@127.0.0.1:{port}?starttls=1&timeout=1&cafile={cert}"
        with pytest.raises(smtplib.SMTPException):
            await SmtpMailer.from_url(bad, "Chorus <no-reply@chorus.test>").send(EMAIL)
        assert len(inbox.messages) == 1
        # An unverifiable certificate (no cafile: the system's trust store) is refused too.
        untrusted = f"smtp://chorus:p%40ss%3Aword@127.0.0.1:{port}?starttls=1&timeout=5"
        with pytest.raises(ssl.SSLError):
            await SmtpMailer.from_url(untrusted, "Chorus <no-reply@chorus.test>").send(EMAIL)
    finally:
        controller.stop()


async def test_implicit_tls(tls_files):
    from aiosmtpd.controller import Controller

    cert, key = tls_files
    inbox, port = _Inbox(), _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, ssl_context=_server_context(cert, key))
    controller.start()
    try:
        await SmtpMailer.from_url(f"smtps://127.0.0.1:{port}?timeout=5&cafile={cert}", "no-reply@chorus.test").send(EMAIL)
        assert len(inbox.messages) == 1
    finally:
        controller.stop()


async def test_a_server_that_never_answers_times_out(tmp_path):
    # Accepts the connection, never sends its greeting.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        mailer = SmtpMailer.from_url(f"smtp://127.0.0.1:{port}?timeout=0.5", "no-reply@chorus.test")
        with pytest.raises((TimeoutError, smtplib.SMTPServerDisconnected), match="timed out"):
            await mailer.send(EMAIL)
