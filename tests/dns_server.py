"""A real DNS server for tests: dnslib's server on 127.0.0.1, UDP and TCP on one free port,
in background threads, serving records the test sets and changes while it runs.

    server = LocalDnsServer().start()
    server.set_txt("example.com", "v=spf1 include:spf.mailroom.local ~all")
    server.set_txt("s1._domainkey.example.com", ["v=DKIM1; k=rsa; p=MIIB...", "...rest"])  # split
    server.set_cname("bounces.example.com", "bounces.mailroom.local")
    server.hang("_dmarc.example.com")   # no answer at all: the client times out
    server.servfail("example.com")      # SERVFAIL
    server.udp_limit = 1                # every UDP answer truncated (TC): clients retry over TCP

Names that have no records (and nothing below them) answer NXDOMAIN; names that exist but
lack the asked type answer NOERROR with no data. CNAMEs are followed inside the zone.
"""

import threading
from collections.abc import Iterable

from dnslib import CNAME, QTYPE, RCODE, RR, TXT, A, DNSError, DNSRecord
from dnslib.server import DNSHandler, DNSLogger, DNSServer

TXT_STRING_MAX = 255
HANG_SECONDS = 15.0


def split_txt(value: str) -> list[str]:
    """One value as the <=255-byte strings a TXT record is made of."""
    return [value[i:i + TXT_STRING_MAX] for i in range(0, len(value), TXT_STRING_MAX)] or [""]


def _name(value: str) -> str:
    return value.rstrip(".").lower()


class _QuietLogger(DNSLogger):
    def __init__(self):
        super().__init__(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)


class _Handler(DNSHandler):
    def get_reply(self, data):
        request = DNSRecord.parse(data)
        reply = self.server.resolver.resolve(request, self)
        limit = self.server.resolver.udp_limit
        rdata = reply.pack()
        if self.protocol == "udp" and limit and len(rdata) > limit:
            # Like a real server: keep the question, drop the records, set TC.
            truncated = DNSRecord(header=reply.header, q=reply.q)
            truncated.header.tc = 1
            rdata = truncated.pack()
        return rdata


class LocalDnsServer:
    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self.port: int | None = None
        self.udp_limit = 0
        self.queries: list[tuple[str, str, str]] = []  # (name, type, protocol)
        self._records: dict[str, list[tuple[str, object]]] = {}
        self._hang: set[str] = set()
        self._hang_all = False
        self._servfail: set[str] = set()
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._servers: list[DNSServer] = []

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> "LocalDnsServer":
        last_error = None
        for _ in range(50):
            udp = DNSServer(self, address=self.host, port=0, handler=_Handler, logger=_QuietLogger())
            port = udp.server.server_address[1]
            try:
                tcp = DNSServer(self, address=self.host, port=port, tcp=True, handler=_Handler,
                                logger=_QuietLogger())
            except OSError as exc:  # the TCP side of that port is taken: try another
                last_error = exc
                udp.server.server_close()
                continue
            self.port = port
            self._servers = [udp, tcp]
            for server in self._servers:
                server.start_thread()
            return self
        raise RuntimeError(f"no free port for UDP and TCP: {last_error}")

    def stop(self) -> None:
        self._release.set()
        for server in self._servers:
            server.stop()
            server.server.server_close()
        self._servers = []

    @property
    def address(self) -> str:
        """``host:port`` as DNS_NAMESERVERS takes it."""
        return f"{self.host}:{self.port}"

    # --- records -------------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self._records.clear()
            self._hang.clear()
            self._hang_all = False
            self._servfail.clear()
            self.udp_limit = 0
            self.queries.clear()
        # Let go of any request still hanging from the previous test.
        self._release.set()
        self._release = threading.Event()

    def _put(self, name: str, rtype: str, rdatas: Iterable, *, replace: bool = True) -> None:
        name = _name(name)
        with self._lock:
            kept = [r for r in self._records.get(name, []) if not replace or r[0] != rtype]
            self._records[name] = kept + [(rtype, rdata) for rdata in rdatas]

    def set_txt(self, name: str, *values: str | list[str] | tuple[str, ...]) -> None:
        """Replace the TXT records at ``name``: one record per value; a str is split into
        255-byte strings as needed, a list/tuple gives the record's strings explicitly."""
        rdatas = [TXT([s.encode() for s in (split_txt(v) if isinstance(v, str) else v)]) for v in values]
        self._put(name, "TXT", rdatas)

    def add_txt(self, name: str, value: str | list[str]) -> None:
        strings = split_txt(value) if isinstance(value, str) else value
        self._put(name, "TXT", [TXT([s.encode() for s in strings])], replace=False)

    def set_cname(self, name: str, target: str) -> None:
        with self._lock:
            self._records[_name(name)] = []  # a CNAME owns its name alone (RFC 1034 3.6.2)
        self._put(name, "CNAME", [CNAME(_name(target) + ".")])

    def set_a(self, name: str, *addresses: str) -> None:
        self._put(name, "A", [A(a) for a in addresses])

    def remove(self, name: str, rtype: str | None = None) -> None:
        name = _name(name)
        with self._lock:
            if rtype is None:
                self._records.pop(name, None)
            else:
                self._records[name] = [r for r in self._records.get(name, []) if r[0] != rtype]
                if not self._records[name]:
                    del self._records[name]

    def hang(self, name: str | None = None) -> None:
        """Never answer questions about ``name`` (or about anything): clients time out."""
        with self._lock:
            if name is None:
                self._hang_all = True
            else:
                self._hang.add(_name(name))

    def unhang(self) -> None:
        with self._lock:
            self._hang.clear()
            self._hang_all = False

    def servfail(self, name: str) -> None:
        with self._lock:
            self._servfail.add(_name(name))

    def publish(self, dns_records: list[dict], *, skip: Iterable[str] = ()) -> None:
        """Publish records as the domains API lists them (``type``/``name``/``value``), except the
        purposes in ``skip``. TXT values are split into 255-byte strings, as a tenant must."""
        skip = set(skip)
        txt: dict[str, list[str]] = {}
        for record in dns_records:
            if record["purpose"] in skip:
                continue
            if record["type"] == "TXT":
                txt.setdefault(record["name"], []).append(record["value"])
            else:
                self.set_cname(record["name"], record["value"])
        for name, values in txt.items():
            self.set_txt(name, *values)

    # --- dnslib's resolver interface ------------------------------------------------------------

    def _exists(self, name: str) -> bool:
        return name in self._records or any(n.endswith("." + name) for n in self._records)

    def resolve(self, request, handler):
        qname = _name(str(request.q.qname))
        qtype = QTYPE[request.q.qtype]
        with self._lock:
            self.queries.append((qname, qtype, handler.protocol))
            hang = self._hang_all or qname in self._hang
            servfail = qname in self._servfail
            release = self._release
        if hang:
            release.wait(HANG_SECONDS)
            raise DNSError("hanging on purpose")  # dnslib's handler then sends nothing
        reply = request.reply()
        reply.header.aa = 1
        if servfail:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        name, seen = qname, set()
        with self._lock:
            while name not in seen:
                seen.add(name)
                if not self._exists(name):
                    reply.header.rcode = RCODE.NXDOMAIN
                    break
                entries = self._records.get(name, [])
                matching = [rdata for rtype, rdata in entries if rtype == qtype]
                if matching:
                    for rdata in matching:
                        reply.add_answer(RR(name + ".", getattr(QTYPE, qtype), rdata=rdata, ttl=60))
                    break
                aliases = [rdata for rtype, rdata in entries if rtype == "CNAME"]
                if not aliases or qtype == "CNAME":
                    break  # NOERROR, no data
                reply.add_answer(RR(name + ".", QTYPE.CNAME, rdata=aliases[0], ttl=60))
                name = _name(str(aliases[0].label))
        return reply

