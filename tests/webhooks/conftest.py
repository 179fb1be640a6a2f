"""A real HTTP receiver on loopback, scriptable per request, for the webhook tests."""

import collections
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    at: float


@dataclass
class Reply:
    status: int = 200
    headers: dict = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0


class Receiver:
    """Records every request (headers, raw body) and answers from a script (default 200)."""

    def __init__(self):
        self.requests: list[Received] = []
        self.script: collections.deque[Reply] = collections.deque()
        self.default = Reply()
        self.lock = threading.Lock()
        self.connections = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                with receiver.lock:
                    receiver.connections += 1

            def do_POST(self):  # noqa: N802 - http.server's hook name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append(Received(self.path, dict(self.headers.items()), body, time.time()))
                    reply = receiver.script.popleft() if receiver.script else receiver.default
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass  # the client gave up (timeout tests)

            do_GET = do_POST  # noqa: N815 - a followed redirect would arrive as a GET

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def respond(self, status: int = 200, *, headers: dict | None = None, body: bytes = b"", delay: float = 0.0,
                times: int = 1) -> None:
        with self.lock:
            self.script.extend(Reply(status, headers or {}, body, delay) for _ in range(times))

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} requests at the receiver, got {len(self.requests)}")

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def allow_private(settings):
    settings.MAILROOM_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    return settings


@pytest.fixture
def receiver(allow_private):
    server = Receiver().start()
    yield server
    server.stop()


class Listener:
    """A bare TCP listener on loopback that only counts the connections it accepts."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            conn.close()

    def stop(self):
        self._stop.set()
        self.thread.join(1)
        self.sock.close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.stop()
