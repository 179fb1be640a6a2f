"""The one place webhook HTTP requests are made (requests + urllib3).

- connects only to addresses checked by webhooks/targets.py, at connection time (the socket
  is opened to the checked IP; TLS still verifies the certificate against the host name);
- 15 s to connect and 15 s for each read; redirects are never followed; proxies from the
  environment are ignored (they would bypass the address check);
- reads at most the first 1 KB of the response body.
"""

import email.utils
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import requests
from requests.adapters import HTTPAdapter
from urllib3 import connection as u3connection
from urllib3 import connectionpool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as u3util

from webhooks import targets

TIMEOUT_SECONDS = 15
RESPONSE_BODY_LIMIT = 1024
USER_AGENT = "Mailroom-Webhooks/1.0"


class _CheckedConnectionMixin:
    """Resolve, check every address, then open the socket to a checked address."""

    remote_ip: str | None = None

    def _new_conn(self):
        addresses = targets.resolve(self._dns_host, self.port)  # TargetRefused propagates as is
        last_error: OSError | None = None
        for address in addresses:
            try:
                sock = u3util.create_connection(
                    (address, self.port), self.timeout,
                    source_address=self.source_address, socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                raise ConnectTimeoutError(self, f"Connection to {self.host} timed out.") from exc
            except OSError as exc:
                last_error = exc
                continue
            self.remote_ip = address
            return sock
        raise NewConnectionError(self, f"Failed to establish a new connection: {last_error}")

    def getresponse(self, *args, **kwargs):
        response = super().getresponse(*args, **kwargs)
        response.mailroom_remote_ip = self.remote_ip
        return response


class CheckedHTTPConnection(_CheckedConnectionMixin, u3connection.HTTPConnection):
    pass


class CheckedHTTPSConnection(_CheckedConnectionMixin, u3connection.HTTPSConnection):
    pass


class CheckedHTTPConnectionPool(connectionpool.HTTPConnectionPool):
    ConnectionCls = CheckedHTTPConnection


class CheckedHTTPSConnectionPool(connectionpool.HTTPSConnectionPool):
    ConnectionCls = CheckedHTTPSConnection


class CheckedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": CheckedHTTPConnectionPool, "https": CheckedHTTPSConnectionPool,
        }


_local = threading.local()


def _session() -> requests.Session:
    # One keep-alive session per thread (delivery threads each have their own).
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        session.trust_env = False
        adapter = CheckedAdapter(pool_connections=32, pool_maxsize=4, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        _local.session = session
    return session


@dataclass
class HttpResult:
    status_code: int | None
    body: str
    error: str
    duration_ms: int
    remote_ip: str | None
    retry_after: float | None
    started_at: datetime
    refused: bool = False
    # Filled by the caller that signed the request (webhooks/delivery.py).
    webhook_timestamp: int = 0

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - (now if now is not None else time.time()))


def post(url: str, *, body: bytes, headers: dict[str, str]) -> HttpResult:
    """POST once. Never raises for network trouble: the result says what happened."""
    started_at = datetime.now(UTC)
    started = time.monotonic()

    def result(**kwargs) -> HttpResult:
        defaults = {"status_code": None, "body": "", "error": "", "remote_ip": None, "retry_after": None}
        return HttpResult(**{**defaults, **kwargs}, started_at=started_at,
                          duration_ms=int((time.monotonic() - started) * 1000))

    try:
        targets.split_url(url)
        response = _session().post(
            url, data=body, headers={"User-Agent": USER_AGENT, "Content-Type": "application/json", **headers},
            timeout=(TIMEOUT_SECONDS, TIMEOUT_SECONDS), allow_redirects=False, stream=True,
        )
    except targets.TargetRefused as exc:
        return result(error=f"Refused: {exc}", refused=True)
    except requests.Timeout:
        return result(error=f"Timed out after {TIMEOUT_SECONDS} s.")
    except requests.RequestException as exc:
        return result(error=f"Connection failed: {_short(exc)}")
    try:
        raw = response.raw.read(RESPONSE_BODY_LIMIT, decode_content=True) or b""
        error = ""
    except Exception as exc:  # a broken body must still record the status code received
        raw, error = b"", f"Reading the response failed: {_short(exc)}"
    finally:
        # A body longer than 1 KB is not read further: closing drops the connection instead.
        response.close()
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("Retry-After")) if status in (429, 503) else None
    if not error and not 200 <= status < 300:
        error = f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
    return result(status_code=status, body=raw.decode("utf-8", errors="replace"), error=error,
                  remote_ip=getattr(response.raw, "mailroom_remote_ip", None), retry_after=retry_after)


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:300] + "…"
