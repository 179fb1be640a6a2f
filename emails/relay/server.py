"""The relay server: aiosmtpd's SMTP protocol and threaded Controller, configured for Mailroom.

Two modes, one listener each:
- STARTTLS (ports 25, 587, 2525): plaintext greeting, ``STARTTLS`` required before anything
  but EHLO/HELO/NOOP/QUIT, AUTH only after it;
- implicit TLS (port 465, ``implicit_tls=True``): TLS from the first byte, no STARTTLS offered.
AUTH is required before MAIL in both. ``allow_plaintext_auth`` (development only) lets a
client on a loopback address AUTH without STARTTLS; anyone else still needs TLS.
"""

import asyncio
import ipaddress
import logging
import re
import signal
from dataclasses import dataclass
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from django.conf import settings

from emails.relay.handler import RelayHandler
from emails.relay.headers import DOT_ATOM
from emails.relay.tls import self_signed_certificate, server_ssl_context

logger = logging.getLogger("mailroom.smtp_relay")

IDENT = "Mailroom ESMTP relay"
# A client guessing passwords on one connection is cut off after this many AUTH commands.
AUTH_COMMANDS_PER_CONNECTION = 5


class _QuietDeprecation(logging.Filter):
    # aiosmtpd 1.4 sets its deprecated ``Session.login_data`` itself on every successful AUTH
    # and logs a warning for it; that is not ours to fix and would flood the log.
    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_QuietDeprecation())


@dataclass(frozen=True)
class RelayConfig:
    host: str
    port: int
    tls_cert: Path
    tls_key: Path
    hostname: str
    implicit_tls: bool = False
    allow_plaintext_auth: bool = False
    max_message_bytes: int = 10 * 1024 * 1024
    timeout_seconds: float = 300.0
    threads: int = 16


def config_from_settings(*, host: str | None = None, port: int | None = None, tls_cert: str | None = None,
                         tls_key: str | None = None, implicit_tls: bool | None = None) -> RelayConfig:
    """Settings, overridden by the command's options; no certificate given means self-signed."""
    cert = tls_cert or settings.SMTP_RELAY_TLS_CERT
    key = tls_key or settings.SMTP_RELAY_TLS_KEY
    if bool(cert) != bool(key):
        raise ValueError("Give both a TLS certificate and its key (SMTP_RELAY_TLS_CERT and SMTP_RELAY_TLS_KEY), "
                         "or neither for a self-signed development certificate.")
    hostname = settings.SMTP_RELAY_HOSTNAME
    if not cert:
        cert, key = self_signed_certificate(Path(settings.VAR_DIR) / "smtp-relay", hostname=hostname)
    return RelayConfig(
        host=host or settings.SMTP_RELAY_HOST, port=port or settings.SMTP_RELAY_PORT,
        tls_cert=Path(cert), tls_key=Path(key), hostname=hostname,
        implicit_tls=settings.SMTP_RELAY_IMPLICIT_TLS if implicit_tls is None else implicit_tls,
        allow_plaintext_auth=settings.SMTP_RELAY_ALLOW_PLAINTEXT_AUTH,
        max_message_bytes=settings.SMTP_RELAY_MAX_MESSAGE_BYTES,
        timeout_seconds=settings.SMTP_RELAY_TIMEOUT_SECONDS, threads=settings.SMTP_RELAY_THREADS,
    )


def _is_loopback(peer) -> bool:
    try:
        address = ipaddress.ip_address(peer[0])
    except (TypeError, ValueError, IndexError):
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


# aiosmtpd reads every MAIL FROM and RCPT TO path with the email package's RFC 5322 parser,
# and defines a typing.Protocol class on each call: ~8% of the relay's own CPU per message.
# The usual path, <local@domain> with a dot-atom on each side, is read here with the same
# result (tests/relay/test_units.py compares the two); anything else goes to aiosmtpd.
_PLAIN_PATH = re.compile(rf"<({DOT_ATOM}@{DOT_ATOM})>")


def _plain_path(arg: str) -> tuple[str, str] | None:
    """(address, parameters) for a plain ``<local@domain> [parameters]`` argument, else None."""
    match = _PLAIN_PATH.match(arg)
    if match is None:
        return None
    rest = arg[match.end():]
    if rest[:1] in (" ", "\t"):
        rest = rest.lstrip()  # the parser skips folding white space after the ">", as lstrip does
    if rest.startswith("("):  # and comments, which are left to it
        return None
    return match[1], rest


class RelaySMTP(SMTP):
    """aiosmtpd's protocol with two per-connection decisions it can only make once the peer
    and the transport are known: implicit TLS counts as TLS for AUTH, and the development
    switch for plaintext AUTH from loopback clients; and a cheaper reading of plain paths."""

    def __init__(self, handler, *, allow_plaintext_auth: bool = False, **kwargs):
        super().__init__(handler, **kwargs)
        self._allow_plaintext_auth = allow_plaintext_auth

    def connection_made(self, transport) -> None:
        after_starttls = self._original_transport is not None
        super().connection_made(transport)
        if after_starttls:
            return
        if transport.get_extra_info("ssl_object") is not None:
            # Implicit TLS (port 465): aiosmtpd only knows TLS it negotiated itself (STARTTLS).
            self._auth_require_tls = False
        elif self._allow_plaintext_auth and _is_loopback(self.session.peer):
            self.require_starttls = False
            self._auth_require_tls = False

    def _getaddr(self, arg: str):
        # aiosmtpd's own helper for MAIL and RCPT (pinned aiosmtpd==1.4.6), overridden for speed.
        plain = None if self.local_part_limit else _plain_path(arg)
        return plain or super()._getaddr(arg)


def _smtp_kwargs(config: RelayConfig, context) -> dict:
    """aiosmtpd ``SMTP`` arguments (all but the greeting host name)."""
    return {
        "ident": IDENT,
        "tls_context": None if config.implicit_tls else context,
        "require_starttls": not config.implicit_tls,
        "auth_required": True,
        "auth_require_tls": True,
        "allow_plaintext_auth": config.allow_plaintext_auth,
        "data_size_limit": config.max_message_bytes,
        "enable_SMTPUTF8": True,
        "timeout": config.timeout_seconds,
        "command_call_limit": {"AUTH": AUTH_COMMANDS_PER_CONNECTION, "*": 10**9},
    }


class RelayController(Controller):
    """The relay on aiosmtpd's threaded controller: its own loop in a background thread
    (tests, embedding). The command runs ``serve`` instead."""

    def factory(self):
        return RelaySMTP(self.handler, **self.SMTP_kwargs)


def relay_controller(config: RelayConfig, handler: RelayHandler | None = None) -> RelayController:
    context = server_ssl_context(config.tls_cert, config.tls_key)
    return RelayController(
        handler or RelayHandler(threads=config.threads), hostname=config.host, port=config.port,
        ssl_context=context if config.implicit_tls else None, server_hostname=config.hostname,
        **_smtp_kwargs(config, context),
    )


def stop(controller: RelayController) -> None:
    """Stop the event loop, then the handler's worker threads (closing their connections)."""
    controller.stop()
    controller.handler.close()


def serve(config: RelayConfig, *, reuse_port: bool = False, drain_seconds: float = 30.0,
          on_ready=None) -> None:
    """Run the relay on this (main) thread until SIGTERM or SIGINT, then stop gracefully:
    stop accepting, let messages being accepted finish (up to ``drain_seconds``), close.

    A message cut off mid-acceptance could be stored while its client sees a dropped
    connection and sends it again; draining avoids that duplicate. ``reuse_port`` lets
    several processes listen on one port (SO_REUSEPORT; the kernel spreads connections):
    one process is bound by the GIL to about one core.
    """
    handler = RelayHandler(threads=config.threads)
    context = server_ssl_context(config.tls_cert, config.tls_key)
    kwargs = {**_smtp_kwargs(config, context), "hostname": config.hostname}
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    async def main():
        stopping = asyncio.Event()
        server = await loop.create_server(
            lambda: RelaySMTP(handler, loop=loop, **kwargs), host=config.host, port=config.port,
            ssl=context if config.implicit_tls else None, reuse_port=reuse_port or None,
        )
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        if on_ready is not None:
            on_ready()
        await stopping.wait()
        server.close()
        deadline = loop.time() + drain_seconds
        while handler.in_flight and loop.time() < deadline:
            await asyncio.sleep(0.05)

    try:
        loop.run_until_complete(main())
        sessions = asyncio.all_tasks(loop)  # idle client connections: cut them
        for task in sessions:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*sessions, return_exceptions=True))
    finally:
        loop.close()
        handler.close()
