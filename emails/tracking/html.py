"""Rewriting an email's HTML for tracking, with the standard library's HTML parser.

``html.parser`` tokenises the document the way a browser's tokenizer does (attributes in any
quoting, entities, ``<script>``/``<style>`` contents, comments), which a regular expression
over the whole document cannot. The parser reports where each start tag begins and its exact
source text; only those spans are replaced, so everything else in the document stays byte for
byte as the sender wrote it.
"""

import html
import logging
from dataclasses import dataclass, field
from html.parser import HTMLParser

logger = logging.getLogger(__name__)

NOTRACK_ATTRIBUTE = "data-mailroom-notrack"
TRACKED_SCHEMES = ("http", "https")
LINK_TAGS = {"a", "area"}
MAX_TRACKED_LINKS = 1000  # links past this are left as they are
# What browsers strip from an href before reading its scheme (URL standard: C0 controls and space).
_STRIP = "".join(chr(c) for c in range(0x21))


@dataclass
class _Tag:
    start: int
    end: int
    name: str
    attrs: list[tuple[str, str | None]]


@dataclass
class _Scan:
    links: list[_Tag] = field(default_factory=list)
    body_end: int | None = None
    html_end: int | None = None


class _Scanner(HTMLParser):
    def __init__(self, source: str):
        super().__init__(convert_charrefs=True)
        self.source = source
        self.line_starts = [0]
        for index, char in enumerate(source):
            if char == "\n":
                self.line_starts.append(index + 1)
        self.scan = _Scan()

    def _offset(self) -> int:
        line, column = self.getpos()
        return self.line_starts[line - 1] + column

    def handle_starttag(self, tag, attrs):
        if tag in LINK_TAGS:
            start = self._offset()
            raw = self.get_starttag_text() or ""
            if self.source.startswith(raw, start):  # a span we can replace exactly
                self.scan.links.append(_Tag(start, start + len(raw), tag, attrs))

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag):
        if tag == "body":
            self.scan.body_end = self._offset()
        elif tag == "html":
            self.scan.html_end = self._offset()


def _scan(source: str) -> _Scan:
    scanner = _Scanner(source)
    try:
        scanner.feed(source)
        scanner.close()
    except Exception:  # the parser is tolerant, but a send must never fail on odd markup
        logger.warning("HTML could not be scanned for links; sending it untracked", exc_info=True)
        return _Scan()
    return scanner.scan


def link_urls(source: str) -> list[str]:
    """The ``http(s)`` link targets of a document, in order (notrack links included)."""
    return [value.strip(_STRIP) for tag in _scan(source).links for key, value in tag.attrs
            if key == "href" and is_trackable(value)]


def is_trackable(url: str | None) -> bool:
    if not url:
        return False
    scheme, sep, rest = url.strip(_STRIP).partition(":")
    return bool(sep) and scheme.lower() in TRACKED_SCHEMES and rest.startswith("//") and len(rest) > 2


def _render_tag(name: str, attrs: list[tuple[str, str | None]], self_closing: bool) -> str:
    parts = [name]
    for key, value in attrs:
        parts.append(key if value is None else f'{key}="{html.escape(value, quote=True)}"')
    return "<" + " ".join(parts) + (" />" if self_closing else ">")


@dataclass
class Rewritten:
    html: str
    links: list[str]  # original URLs, by link index


def rewrite_html(source: str, *, click_url=None, pixel_url: str | None = None,
                 footer_html: str | None = None) -> Rewritten:
    """Rewrite ``http(s)`` links to ``click_url(index)``; add the pixel and a footer before
    ``</body>`` (or at the end). ``mailto:``, ``tel:``, anchors, relative links and links marked
    ``data-mailroom-notrack`` are left alone."""
    scan = _scan(source)
    pieces: list[str] = []
    links: list[str] = []
    position = 0
    if click_url is not None:
        for tag in scan.links:
            attrs = tag.attrs
            names = [key for key, _ in attrs]
            if NOTRACK_ATTRIBUTE in names or len(links) >= MAX_TRACKED_LINKS:
                continue
            # Browsers use the first of duplicated attributes.
            href_at = names.index("href") if "href" in names else None
            if href_at is None or not is_trackable(attrs[href_at][1]):
                continue
            url = attrs[href_at][1].strip(_STRIP)
            new_attrs = list(attrs)
            new_attrs[href_at] = ("href", click_url(len(links)))
            links.append(url)
            raw = source[tag.start:tag.end]
            pieces.append(source[position:tag.start])
            pieces.append(_render_tag(tag.name, new_attrs, raw.endswith("/>")))
            position = tag.end
    additions = ""
    if footer_html:
        additions += footer_html
    if pixel_url:
        additions += (f'<img src="{html.escape(pixel_url, quote=True)}" width="1" height="1" alt="" '
                      'style="display:block;width:1px;height:1px;border:0;margin:0;padding:0;" />')
    insert_at = scan.body_end if scan.body_end is not None else scan.html_end
    if additions and insert_at is not None and insert_at >= position:
        pieces.append(source[position:insert_at])
        pieces.append(additions)
        pieces.append(source[insert_at:])
    else:
        pieces.append(source[position:])
        pieces.append(additions)
    return Rewritten(html="".join(pieces), links=links)
