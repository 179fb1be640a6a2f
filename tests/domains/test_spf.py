"""SPF parsing, merging and lookup counting (no DNS: ``fetch`` is a dict here)."""

import pytest

from domains import spf

PLATFORM = "spf.mailroom.local"


@pytest.mark.parametrize(("existing", "merged"), [
    ("v=spf1 ~all", "v=spf1 include:spf.mailroom.local ~all"),
    ("v=spf1 include:_spf.google.com -all", "v=spf1 include:_spf.google.com include:spf.mailroom.local -all"),
    ("v=spf1 mx", "v=spf1 mx include:spf.mailroom.local"),
    ("v=spf1 a redirect=_spf.example.com", "v=spf1 a include:spf.mailroom.local redirect=_spf.example.com"),
    ("v=spf1 include:SPF.mailroom.local. ~all", "v=spf1 include:SPF.mailroom.local. ~all"),
])
def test_it_merges_our_include_into_an_existing_record(existing, merged):
    assert spf.merge_include(existing, PLATFORM) == merged


def test_it_recognises_spf_records_only():
    assert spf.spf_records(["v=spf1 -all", "V=SPF1 mx -all", "v=spf10 -all", "google-site=1", "v=spf1"]) == [
        "v=spf1 -all", "V=SPF1 mx -all", "v=spf1"]


def evaluate(record: str, zone: dict[str, list[str]]):
    return spf.evaluate(record, domain="example.com", platform_include=PLATFORM, fetch=zone.get)


def test_it_counts_lookups_through_includes_and_redirects():
    zone = {"a.example": ["v=spf1 mx a:x.example -all"], "r.example": ["v=spf1 include:a.example ?all"]}
    result = evaluate("v=spf1 ip4:192.0.2.1 include:a.example exists:%{i}.x.example redirect=r.example", zone)
    # include + mx + a, exists, redirect + include + mx + a
    assert (result.lookups, result.includes_platform) == (8, False)


def test_redirect_is_ignored_when_there_is_an_all():
    assert evaluate("v=spf1 -all redirect=r.example", {}).lookups == 0


def test_our_include_counts_and_is_found_at_any_depth():
    zone = {"vendor.example": [f"v=spf1 include:{PLATFORM} -all"], PLATFORM: ["v=spf1 ip4:198.51.100.0/24 -all"]}
    result = evaluate("v=spf1 include:vendor.example ~all", zone)
    assert (result.lookups, result.includes_platform) == (2, True)


def test_our_own_include_without_a_record_is_not_the_tenants_fault():
    assert evaluate(f"v=spf1 include:{PLATFORM} ~all", {}).includes_platform is True


@pytest.mark.parametrize(("record", "zone", "message"), [
    ("v=spf1 include:gone.example ~all", {}, "'include:gone.example' names a domain without an SPF record"),
    ("v=spf1 include:loop.example ~all", {"loop.example": ["v=spf1 include:example.com -all"],
                                           "example.com": ["v=spf1 include:loop.example ~all"]},
     "The SPF record loops: example.com -> loop.example -> example.com."),
    ("v=spf1 include:two.example ~all", {"two.example": ["v=spf1 -all", "v=spf1 mx -all"]},
     "two.example publishes 2 SPF records"),
    ("v=spf1 " + " ".join(["a"] * 11) + " -all", {}, "The SPF record needs more than 10 DNS lookups (reached at 'a')"),
])
def test_what_receivers_reject_is_an_error(record, zone, message):
    with pytest.raises(spf.SpfError) as caught:
        evaluate(record, zone)
    assert str(caught.value).startswith(message)


def test_exactly_ten_lookups_pass():
    assert evaluate("v=spf1 " + " ".join(["mx"] * 10) + " -all", {}).lookups == 10
