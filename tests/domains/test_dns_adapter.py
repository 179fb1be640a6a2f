"""The DNS adapter against the real loopback server: what it asks, and how answers map."""

import dns.nameserver
import pytest
from django.core.exceptions import ImproperlyConfigured

from domains import dns as mdns

LONG_VALUE = "v=DKIM1; k=rsa; p=" + "A" * 392


def test_it_builds_the_resolver_from_settings_alone(dns_server, settings):
    resolver = mdns.make_resolver()
    [nameserver] = resolver.nameservers
    assert isinstance(nameserver, dns.nameserver.Do53Nameserver)
    assert (nameserver.address, nameserver.port) == ("127.0.0.1", dns_server.port)
    assert resolver.cache is None
    assert resolver.search == []
    assert resolver.lifetime == settings.DNS_TIMEOUT_SECONDS
    assert resolver.timeout == settings.DNS_TIMEOUT_SECONDS / 2


@pytest.mark.parametrize(("entry", "parsed"), [
    ("10.0.0.1", ("10.0.0.1", 53)),
    ("10.0.0.1:5353", ("10.0.0.1", 5353)),
    ("::1", ("::1", 53)),
    ("[::1]:5353", ("::1", 5353)),
])
def test_it_parses_nameserver_entries(entry, parsed):
    assert mdns.parse_nameserver(entry) == parsed


@pytest.mark.parametrize("entry", ["dns.example.com", "10.0.0.1:0", "10.0.0.1:x", "[::1]x"])
def test_it_refuses_nameserver_entries_it_cannot_use(entry):
    with pytest.raises(ImproperlyConfigured):
        mdns.parse_nameserver(entry)


def test_it_joins_the_strings_of_a_split_txt_record(dns_server):
    dns_server.set_txt("sel._domainkey.example.com", [LONG_VALUE[:255], LONG_VALUE[255:]])
    answer = mdns.txt("sel._domainkey.example.com")
    assert answer.exists
    assert answer.values == (LONG_VALUE,)


def test_it_keeps_separate_txt_records_apart(dns_server):
    dns_server.set_txt("example.com", "v=spf1 -all", "google-site-verification=abc")
    assert sorted(mdns.txt("example.com").values) == ["google-site-verification=abc", "v=spf1 -all"]


def test_it_tells_nxdomain_from_a_name_without_that_record(dns_server):
    dns_server.set_a("example.com", "192.0.2.1")
    dns_server.set_txt("a.b.example.com", "x")
    assert mdns.txt("missing.example.com").outcome == mdns.NXDOMAIN
    assert mdns.txt("example.com").outcome == mdns.NODATA
    # An empty non-terminal exists: it has a name below it.
    assert mdns.txt("b.example.com").outcome == mdns.NODATA


def test_it_follows_cnames_for_txt_and_reads_cnames_themselves(dns_server):
    dns_server.set_cname("sel._domainkey.example.com", "sel.keys.provider.example")
    dns_server.set_txt("sel.keys.provider.example", LONG_VALUE)
    answer = mdns.txt("sel._domainkey.example.com")
    assert answer.values == (LONG_VALUE,)
    assert answer.canonical_name == "sel.keys.provider.example"
    assert mdns.cname("sel._domainkey.example.com").values == ("sel.keys.provider.example",)


def test_a_timeout_is_a_temporary_error(short_dns_timeout, dns_server):
    dns_server.hang("example.com")
    with pytest.raises(mdns.DnsTemporaryError, match="Timed out"):
        mdns.txt("example.com")


def test_servfail_is_a_temporary_error(dns_server):
    dns_server.servfail("example.com")
    with pytest.raises(mdns.DnsTemporaryError, match="SERVFAIL"):
        mdns.txt("example.com")


def test_a_truncated_udp_answer_is_asked_again_over_tcp(dns_server):
    dns_server.set_txt("sel._domainkey.example.com", LONG_VALUE)
    dns_server.udp_limit = 1
    assert mdns.txt("sel._domainkey.example.com").values == (LONG_VALUE,)
    assert [q[2] for q in dns_server.queries] == ["udp", "tcp"]


def test_answers_are_never_cached(dns_server):
    dns_server.set_txt("example.com", "one")
    assert mdns.txt("example.com").values == ("one",)
    dns_server.set_txt("example.com", "two")
    assert mdns.txt("example.com").values == ("two",)
