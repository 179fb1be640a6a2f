"""SPF (RFC 7208) as far as verification needs it: find the record, merge our include into
an existing one, and walk includes to count DNS lookups against the limit of 10.

Lookups are made through ``fetch`` (name -> TXT strings, None when there are none), so the
parsing is independent of the resolver. ``mx``/``a`` lookups are counted once each, as
section 4.6.4 counts them; the per-MX address lookups and the void-lookup limit are left to
receivers (they would need the tenant's whole DNS, and the common failure is the 10 limit).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

MAX_DNS_LOOKUPS = 10
_LOOKUP_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})
_MODIFIER = re.compile(r"^([a-z][a-z0-9_.-]*)=(.*)$", re.IGNORECASE)


class SpfError(Exception):
    """The record is broken for receivers (their ``permerror``)."""


def is_spf(value: str) -> bool:
    # Section 4.5: the version is "v=spf1" followed by a space or the end of the record.
    lowered = value.strip().lower()
    return lowered == "v=spf1" or lowered.startswith("v=spf1 ")


def spf_records(values) -> list[str]:
    return [v.strip() for v in values if is_spf(v)]


def _terms(record: str) -> list[str]:
    return record.split()[1:]


def _parse(term: str) -> tuple[bool, str, str]:
    """(is_modifier, name, argument) with the qualifier dropped."""
    modifier = _MODIFIER.match(term)
    if modifier:
        return True, modifier.group(1).lower(), modifier.group(2)
    if term[:1] in "+-~?":
        term = term[1:]
    name, _, arg = term.partition(":")
    if "/" in name:  # "a/24", "mx/24": a CIDR length without a domain
        name = name.split("/", 1)[0]
    return False, name.lower(), arg


def _same(a: str, b: str) -> bool:
    return a.strip().rstrip(".").lower() == b.strip().rstrip(".").lower()


def merge_include(existing: str, include: str) -> str:
    """``existing`` with ``include:<include>`` added before its final ``all``/``redirect=``.

    A domain may publish only one SPF record (section 3.2; two are a permerror), so a tenant
    who already has one must extend it rather than add ours beside it.
    """
    terms = _terms(existing)
    if any(not mod and name == "include" and _same(arg, include) for mod, name, arg in map(_parse, terms)):
        return existing.strip()
    position = len(terms)
    for index, term in enumerate(terms):
        modifier, name, _ = _parse(term)
        if (not modifier and name == "all") or (modifier and name == "redirect"):
            position = index
            break
    terms.insert(position, f"include:{include}")
    return " ".join(["v=spf1", *terms])


@dataclass
class SpfEvaluation:
    includes_platform: bool
    lookups: int


def evaluate(record: str, *, domain: str, platform_include: str,
             fetch: Callable[[str], list[str] | None]) -> SpfEvaluation:
    """Whether ``record`` reaches ``include:<platform_include>`` and how many lookups it costs.

    Raises :class:`SpfError` for what receivers would call a permerror: more than 10
    lookups, an include without an SPF record, a loop, several records at one name.
    ``fetch`` may raise the DNS adapter's temporary error, which is passed through.
    """
    result = SpfEvaluation(includes_platform=False, lookups=0)

    def spend(term: str) -> None:
        result.lookups += 1
        if result.lookups > MAX_DNS_LOOKUPS:
            raise SpfError(f"The SPF record needs more than {MAX_DNS_LOOKUPS} DNS lookups (reached at "
                           f"'{term}'); receivers reject it as a permerror. Remove includes you no longer use.")

    def child(target: str, chain: tuple[str, ...], via: str) -> str | None:
        if target.lower() in chain:
            raise SpfError(f"The SPF record loops: {' -> '.join((*chain, target))}.")
        values = fetch(target)
        records = spf_records(values or [])
        if len(records) > 1:
            raise SpfError(f"{target} publishes {len(records)} SPF records; {via} makes that a permerror.")
        return records[0] if records else None

    def walk(text: str, chain: tuple[str, ...]) -> None:
        parsed = [_parse(t) for t in _terms(text)]
        has_all = any(not mod and name == "all" for mod, name, _ in parsed)
        redirect = None
        for (modifier, name, arg), term in zip(parsed, _terms(text), strict=True):
            if modifier:
                if name == "redirect":
                    redirect = arg
                continue
            if name in _LOOKUP_MECHANISMS:
                spend(term)
            if name != "include":
                continue
            ours = _same(arg, platform_include)
            result.includes_platform |= ours
            if "%" in arg:  # a macro: expanded per message by the receiver, not walkable here
                continue
            target = arg.rstrip(".").lower()
            nested = child(target, chain, term)
            if nested is None:
                if ours:
                    # The platform's own record is the operator's business, not the tenant's.
                    continue
                raise SpfError(f"'{term}' names a domain without an SPF record; receivers return a "
                               "permerror. Remove it or fix that domain.")
            walk(nested, (*chain, target))
        # Section 6.1: redirect is ignored when the record has an "all" mechanism.
        if redirect and not has_all:
            spend(f"redirect={redirect}")
            result.includes_platform |= _same(redirect, platform_include)
            if "%" in redirect:
                return
            target = redirect.rstrip(".").lower()
            nested = child(target, chain, f"redirect={redirect}")
            if nested is None:
                raise SpfError(f"'redirect={redirect}' names a domain without an SPF record.")
            walk(nested, (*chain, target))

    walk(record, (domain.lower(),))
    return result
