"""The relay's aiosmtpd handler: AUTH, MAIL, RCPT and DATA, each decided by the API's rules.

aiosmtpd runs on an event loop; everything that touches the database or the cache is
synchronous Django code, so it runs in a worker thread of the handler's own pool (sessions
must not queue behind one shared thread) with ``close_old_connections`` around each call, as a
request would have (the database backend, ``config.postgresql``, skips the ``SELECT 1`` health
check on a connection whose socket shows it is still open).

aiosmtpd calls its ``authenticator`` callback synchronously on the event loop, where a
database lookup would stall every connection (and Django refuses ORM calls from async code).
So the handler implements the PLAIN and LOGIN mechanisms itself (aiosmtpd's documented
``auth_<MECHANISM>`` handler hooks, which replace the built-in ones) and awaits the same
kind of authenticator, ``emails.relay.authenticator.authenticate``, returning ``AuthResult``.
"""

import asyncio
import binascii
import functools
import logging
import threading
from base64 import b64decode
from concurrent.futures import ThreadPoolExecutor

from aiosmtpd.smtp import MISSING, AuthResult
from django.db import InterfaceError, OperationalError, close_old_connections, connections
from email_validator import EmailNotValidError, validate_email

from config.api.errors import ApplicationError
from domains.services import domain_check_sender
from emails.relay import authenticator, replies
from emails.relay.message import message_to_send_request
from emails.serializers import EmailOutput
from emails.services import email_send, idempotent
from emails.validation import MAX_BCC, MAX_CC, MAX_TO

logger = logging.getLogger("mailroom.smtp_relay")

MAX_RECIPIENTS = MAX_TO + MAX_CC + MAX_BCC
# Standard LOGIN challenges ("Username:", "Password:"), which some clients look for.
LOGIN_USERNAME_CHALLENGE = "Username:"
LOGIN_PASSWORD_CHALLENGE = "Password:"


def _peer_ip(session) -> str:
    peer = getattr(session, "peer", None)
    return peer[0] if isinstance(peer, tuple) and peer else "unknown"


def _close_after_reply(server) -> None:
    """Close the connection once the reply being returned has been written (421 semantics).

    The hook's return value is pushed before the loop next runs a callback, and closing a
    transport flushes what was written first."""
    def close():
        if server.transport is not None:
            server.transport.close()
    server.loop.call_soon(close)


@functools.lru_cache(maxsize=4096)
def _check_address(address: str) -> str | None:
    # Cached: a syntax check is a pure function of the string, and a client sends the same
    # envelope sender with every message.
    try:
        # test_environment: simulator addresses live under the reserved .test TLD, as in the API.
        validate_email(address, check_deliverability=False, allow_smtputf8=True, test_environment=True)
    except EmailNotValidError as exc:
        return str(exc)
    return None


def _sender_decision(login: authenticator.RelayLogin, address: str) -> str:
    principal, reply = authenticator.current_principal(login)
    if reply is not None:
        return reply
    reply = authenticator.rate_limit_reply(principal)
    if reply is not None:
        return reply
    problem = _check_address(address)
    if problem is not None:
        return f"553 5.1.7 Sender address rejected: {replies.clean(problem)}"
    # The envelope sender's domain must be one the sub-account may send from, as the From
    # header's must be (email_send checks that one): both are visible to receivers (SPF
    # checks the envelope, DMARC the header).
    domain_check_sender(subaccount=principal.subaccount, environment=principal.environment,
                        from_domain=address.rpartition("@")[2])
    return replies.SENDER_OK


def _accept(login: authenticator.RelayLogin, mail_from: str, rcpt_tos: list[str], raw: bytes) -> str:
    principal, reply = authenticator.current_principal(login)
    if reply is not None:
        return reply
    parsed = message_to_send_request(raw, mail_from=mail_from, rcpt_tos=rcpt_tos)

    def run():
        email = email_send(subaccount=principal.subaccount, environment=principal.environment, data=parsed.data)
        # Kept only for replays, so only built when there is a key: the API's response body,
        # so that a key used on both paths replays the same shape.
        return 201, EmailOutput(email).data if parsed.idempotency_key else {"id": email.public_id}

    _, body, replayed = idempotent(subaccount=principal.subaccount, key=parsed.idempotency_key,
                                   body=parsed.data, window_hours=None, run=run)
    logger.info("accepted %s from %s for %d recipient(s)%s", body["id"], login.username, len(rcpt_tos),
                " (replay)" if replayed else "")
    if parsed.dropped_headers:
        logger.info("%s: dropped headers the API refuses: %s", body["id"], ", ".join(parsed.dropped_headers))
    return (replies.QUEUED_REPLAYED if replayed else replies.QUEUED).format(email_id=body["id"])


class RelayHandler:
    def __init__(self, *, threads: int = 16):
        self.in_flight = 0  # messages being accepted now; a graceful stop waits for them
        # The relay's own pool: each worker thread keeps its database connection between
        # messages (CONN_MAX_AGE), and ``close`` closes them all once the pool has stopped.
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="smtp-relay")
        self._opened: set = set()  # the workers' database connection wrappers
        self._opened_lock = threading.Lock()

    def _with_fresh_connections(self, function, *args, **kwargs):
        close_old_connections()
        try:
            return function(*args, **kwargs)
        finally:
            close_old_connections()
            with self._opened_lock:
                self._opened.update(connections.all(initialized_only=True))

    async def _in_thread(self, function, *args, **kwargs):
        # Straight to the pool, not through asgiref's sync_to_async, which on every call builds
        # a wrapper, copies the session's context variables into the thread and back, and
        # shields the future: ~8% of the relay's own CPU per message (bench/smtp_relay.py,
        # profiled). Nothing here needs the session's context; Django's connection and cache
        # handles then live per worker thread and are reused across sessions, as in a
        # threaded WSGI server.
        call = functools.partial(self._with_fresh_connections, function, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def close(self) -> None:
        """Wait for the calls still running, stop the workers, close their database connections."""
        self._executor.shutdown(wait=True)
        with self._opened_lock:
            opened, self._opened = self._opened, set()
        for wrapper in opened:
            # Each wrapper belongs to a worker thread that has ended; closing from here is the
            # cross-thread use Django allows once sharing is declared.
            wrapper.inc_thread_sharing()
            wrapper.close()

    async def _decide(self, server, function, *args) -> str:
        """Run one synchronous decision and turn every failure into an SMTP reply.

        Nothing is stored when this answers an error: email_send and the idempotency record
        commit together or not at all.
        """
        try:
            reply = await self._in_thread(function, *args)
        except ApplicationError as exc:
            reply = replies.reply_for_error(exc)
        except (OperationalError, InterfaceError):
            logger.warning("database unavailable; answering 451", exc_info=True)
            reply = replies.TEMPORARY
        except Exception:
            # A bug must not make the client drop the message: 4xx keeps it queued there.
            logger.exception("unexpected error in the SMTP relay; answering 451")
            reply = replies.TEMPORARY
        if replies.closes_connection(reply):
            _close_after_reply(server)
        return reply

    # --- AUTH (RFC 4954; PLAIN is RFC 4616, LOGIN the de facto mechanism) ----------------------

    async def _authenticate(self, server, login: bytes, password: bytes) -> AuthResult:
        try:
            result = await self._in_thread(authenticator.authenticate, peer_ip=_peer_ip(server.session),
                                      login=login, password=password)
        except (OperationalError, InterfaceError):
            logger.warning("database unavailable during AUTH", exc_info=True)
            return AuthResult(success=False, handled=False, message=replies.AUTH_TEMPORARY)
        except Exception:
            logger.exception("unexpected error during AUTH")
            return AuthResult(success=False, handled=False, message=replies.AUTH_TEMPORARY)
        if not result.success and result.message and replies.closes_connection(result.message):
            _close_after_reply(server)
        return result

    async def _decode(self, server, value: str) -> bytes | None:
        if value == "=":  # RFC 4954 section 4: an empty initial response
            return b""
        try:
            return b64decode(value.encode(), validate=True)
        except (binascii.Error, ValueError):
            await server.push("501 5.5.2 Can't decode base64")
            return None

    async def auth_PLAIN(self, server, args: list[str]) -> AuthResult:  # noqa: N802 - aiosmtpd's hook name
        if len(args) == 1:
            blob = await server.challenge_auth("")
            if blob is MISSING:  # the client aborted, or sent bad base64: already answered
                return AuthResult(success=False, handled=True)
        else:
            blob = await self._decode(server, args[1])
            if blob is None:
                return AuthResult(success=False, handled=True)
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            await server.push("501 5.5.2 Can't split auth value")
            return AuthResult(success=False, handled=True)
        _, login, password = parts  # authorization identity (first) is not supported, as usual
        return await self._authenticate(server, login, password)

    async def auth_LOGIN(self, server, args: list[str]) -> AuthResult:  # noqa: N802
        if len(args) == 1:
            login = await server.challenge_auth(LOGIN_USERNAME_CHALLENGE)
            if login is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            login = await self._decode(server, args[1])
            if login is None:
                return AuthResult(success=False, handled=True)
        password = await server.challenge_auth(LOGIN_PASSWORD_CHALLENGE)
        if password is MISSING:
            return AuthResult(success=False, handled=True)
        return await self._authenticate(server, login, password)

    # --- The mail transaction -------------------------------------------------------------------

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        reply = await self._decide(server, _sender_decision, session.auth_data, address)
        if reply == replies.SENDER_OK:
            envelope.mail_from = address
            envelope.mail_options.extend(mail_options)
        return reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return f"452 4.5.3 Too many recipients (at most {MAX_RECIPIENTS} per message)"
        problem = _check_address(address)
        if problem is not None:
            return f"553 5.1.3 Recipient address rejected: {replies.clean(problem)}"
        if address.lower() not in {r.lower() for r in envelope.rcpt_tos}:
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
        return replies.RECIPIENT_OK

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.in_flight += 1
        try:
            return await self._decide(server, _accept, session.auth_data, envelope.mail_from,
                                      list(envelope.rcpt_tos), envelope.original_content)
        finally:
            self.in_flight -= 1
