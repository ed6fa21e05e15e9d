"""A local stand-in for arXiv's HTTP services, for tests, end-to-end runs and benchmarks.

`ArxivServer` listens on 127.0.0.1 (an ephemeral port by default) and speaks the
same protocols paperbell uses against arXiv:

- `/rss/{cats}` (rss.arxiv.org): an RSS document per category set, with ETag and
  Last-Modified, answering 304 to matching conditional requests;
- `/api/query` (export.arxiv.org): Atom documents chosen by `id_list` or
  `search_query`, arXiv's HTTP 400 error document for malformed ids and
  queries; with a corpus (`set_api_corpus`) it answers `au:`, `all:` and `cat:`
  queries (ANDed) itself, sorted and paged as asked;
- `/a/{id}.atom` (arxiv.org): opted-in author feeds;
- `/oai` (oaipmh.arxiv.org): OAI-PMH `ListRecords`, the first page for a fresh
  request and the page a `resumptionToken` names, OAI-PMH `<error>` answers for
  unknown tokens and verbs (`set_oai`; pages built with `oai_list_records`).

Tests script it: `enqueue(Scripted(...))` makes the next requests answer with a
given status, headers, body, delay, truncated body or dropped connection; every
request is recorded (`requests`) with its arrival time on the monotonic clock so
tests can check spacing and headers; `set_rss` swaps the served listing at run
time ("publishing" a new day).

Standalone, for manual runs and benchmarks:
`python -m tests.arxiv_server --port 8080 --rss FILE [--api FILE] [--author ID=FILE]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import logging
import re
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import Self
from xml.sax.saxutils import escape, quoteattr

from aiohttp import web
from multidict import CIMultiDict

from bot.domain.models import Paper
from bot.domain.names import fold, keyword_tokens

log = logging.getLogger(__name__)

FIXTURES = Path(__file__).parent / "fixtures"

RSS_CONTENT_TYPE = "application/rss+xml; charset=utf-8"
XML_CONTENT_TYPE = "text/xml; charset=utf-8"
ATOM_CONTENT_TYPE = "application/atom+xml; charset=utf-8"

# Shapes the real API accepts in id_list: new style (with optional version) and old style.
_ARXIV_ID = re.compile(r"(\d{4}\.\d{4,5}|[a-z-]+(\.[A-Z]{2})?/\d{7})(v\d+)?")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Scripted:
    """One scripted answer, used by the next request whose path starts with `path`.

    `passthrough=True` answers normally after `delay` (a slow but real answer).
    `truncate_at=N` declares the full Content-Length but sends only N bytes, then
    closes the connection. `chunked=True` streams without Content-Length (so only
    the client's streaming cap can stop an oversized body). `disconnect=True`
    closes the connection without any answer.
    """

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "text/plain; charset=utf-8"
    delay: float = 0.0
    truncate_at: int | None = None
    chunked: bool = False
    disconnect: bool = False
    passthrough: bool = False
    path: str | None = None


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request as the server saw it; `arrived` is `time.monotonic()` on arrival."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: CIMultiDict[str]
    arrived: float


@dataclass(frozen=True, slots=True)
class _Document:
    body: bytes
    content_type: str
    etag: str
    last_modified: str


def _http_date(value: datetime | None = None) -> str:
    return format_datetime(value or datetime.now(UTC), usegmt=True)


def _document(
    body: bytes, content_type: str, etag: str | None, last_modified: str | datetime | None
) -> _Document:
    if etag is None:
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
    if last_modified is None or isinstance(last_modified, datetime):
        last_modified = _http_date(last_modified)
    return _Document(body, content_type, etag, last_modified)


def _category_key(categories: str | Iterable[str]) -> str:
    parts = categories.split("+") if isinstance(categories, str) else list(categories)
    return "+".join(sorted(set(parts)))


def empty_rss(categories: str) -> bytes:
    """An RSS listing without items, shaped like rss.arxiv.org's on a quiet day."""
    cats = escape(categories)
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<rss xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/" \
xmlns:atom="http://www.w3.org/2005/Atom" xmlns:content="http://purl.org/rss/1.0/modules/content/" \
version="2.0">
  <channel>
    <title>{cats} updates on arXiv.org</title>
    <link>http://rss.arxiv.org/rss/{cats}</link>
    <description>{cats} updates on the arXiv.org e-print archive.</description>
    <atom:link href="http://rss.arxiv.org/rss/{cats}" rel="self" type="application/rss+xml"/>
    <docs>http://www.rssboard.org/rss-specification</docs>
    <language>en-us</language>
    <lastBuildDate>Thu, 28 Nov 2024 05:00:08 +0000</lastBuildDate>
    <managingEditor>rss-help@arxiv.org</managingEditor>
    <pubDate>Thu, 28 Nov 2024 00:00:00 -0500</pubDate>
    <skipDays>
      <day>Saturday</day>
      <day>Sunday</day>
    </skipDays>
  </channel>
</rss>
""".encode()


def _atom_feed(title: str, total: int, entries: str, *, start: int = 0) -> bytes:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" \
xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns="http://www.w3.org/2005/Atom">
  <id>https://arxiv.org/</id>
  <title>{escape(title)}</title>
  <updated>{now}</updated>
  <opensearch:itemsPerPage>{total}</opensearch:itemsPerPage>
  <opensearch:totalResults>{total}</opensearch:totalResults>
  <opensearch:startIndex>{start}</opensearch:startIndex>
{entries}</feed>
""".encode()


def empty_api_feed() -> bytes:
    """An API answer with no results (what arXiv returns for a query matching nothing)."""
    return _atom_feed("arXiv Query", 0, "")


def _atom_time(value: datetime | None) -> str:
    return (
        (value or datetime(2024, 1, 1, tzinfo=UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    )


def atom_entry(paper: Paper) -> str:
    """One API `<entry>` for `paper`, shaped like export.arxiv.org's."""
    abs_url = f"https://arxiv.org/abs/{paper.versioned_id}"
    categories = "".join(
        f'    <category term={quoteattr(c)} scheme="http://arxiv.org/schemas/atom"/>\n'
        for c in paper.categories
    )
    authors = "".join(
        f"    <author>\n      <name>{escape(name)}</name>\n    </author>\n"
        for name in paper.authors
    )
    comment = (
        f"    <arxiv:comment>{escape(paper.comment)}</arxiv:comment>\n" if paper.comment else ""
    )
    return (
        "  <entry>\n"
        f"    <id>{abs_url.replace('https:', 'http:')}</id>\n"
        f"    <title>{escape(paper.title)}</title>\n"
        f"    <updated>{_atom_time(paper.updated or paper.published)}</updated>\n"
        f'    <link href="{abs_url}" rel="alternate" type="text/html"/>\n'
        f"    <summary>{escape(paper.abstract)}</summary>\n"
        f"{categories}"
        f"    <published>{_atom_time(paper.published)}</published>\n"
        f"{comment}"
        f"    <arxiv:primary_category term={quoteattr(paper.primary_category)}/>\n"
        f"{authors}"
        "  </entry>\n"
    )


def api_feed(papers: Iterable[Paper], *, total: int | None = None, start: int = 0) -> bytes:
    """An API answer listing `papers` (one page of `total` results)."""
    shown = list(papers)
    entries = "".join(atom_entry(p) for p in shown)
    return _atom_feed("arXiv Query", len(shown) if total is None else total, entries, start=start)


def _author_matches(term: str, names: Iterable[str]) -> bool:
    """`au:legg` / `au:legg_s`, read loosely as arXiv does: a name with that word (and an
    other word starting with the initial); it cannot tell Shane Legg from Sarah Legg."""
    surname, _, initial = term.partition("_")
    for name in names:
        words = fold(name).split()
        if surname in words and (
            not initial or any(w.startswith(initial) for w in words if w != surname)
        ):
            return True
    return False


def _term_matches(field: str, value: str, paper: Paper) -> bool:
    if field == "au":
        return _author_matches(value, paper.authors)
    if field == "all":
        text = " ".join(
            (paper.title, paper.abstract, ", ".join(paper.authors), paper.comment or "")
        )
        return value in keyword_tokens(text)
    if value.endswith("*"):  # cat:cs* (a whole archive)
        return any(c.startswith(value[:-1]) for c in paper.categories)
    return value in paper.categories


_QUERY_TERM = re.compile(r"(au|all|cat):([\w.*-]+)")


def evaluate_query(search_query: str, corpus: Iterable[Paper]) -> list[Paper] | None:
    """Papers of `corpus` matching ANDed `au:`/`all:`/`cat:` terms; None if not understood."""
    terms = []
    for part in search_query.split(" AND "):
        match = _QUERY_TERM.fullmatch(part.strip())
        if match is None:
            return None
        terms.append(
            (match.group(1), match.group(2).lower() if match.group(1) != "cat" else match.group(2))
        )
    return [p for p in corpus if all(_term_matches(f, v, p) for f, v in terms)]


def api_error_feed(message: str, anchor: str) -> bytes:
    """arXiv's API error document: a feed with one entry titled `Error`."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    link = f"https://arxiv.org/api/errors#{escape(anchor)}"
    entry = f"""  <entry>
    <id>{link}</id>
    <title>Error</title>
    <updated>{now}</updated>
    <link href="{link}" rel="alternate" type="text/html"/>
    <summary>{escape(message)}</summary>
    <author>
      <name>arXiv api core</name>
    </author>
  </entry>
"""
    return _atom_feed("arXiv Search Results", 1, entry)


_OAI_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
xsi:schemaLocation="http://www.openarchives.org/OAI/2.0/ \
http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd">
<responseDate>2024-12-03T08:14:05Z</responseDate>
<request verb="ListRecords">https://oaipmh.arxiv.org/oai</request>
"""


def oai_error(code: str, message: str) -> bytes:
    """An OAI-PMH error answer (`badResumptionToken`, `badArgument`, `noRecordsMatch`...)."""
    return (
        f'{_OAI_HEAD}<error code="{escape(code)}">{escape(message)}</error>\n</OAI-PMH>\n'
    ).encode()


def oai_raw_record(
    arxiv_id: str,
    title: str,
    authors: str,
    *,
    categories: str = "cs.LG",
    abstract: str = "An abstract.",
    versions: Iterable[str] = ("Mon, 2 Apr 2007 19:18:42 GMT",),
    datestamp: str = "2024-12-02",
    deleted: bool = False,
) -> str:
    """One `<record>` in arXiv's `arXivRaw` metadata format (every version with its date)."""
    if deleted:
        return (
            f'<record><header status="deleted"><identifier>oai:arXiv.org:{escape(arxiv_id)}'
            f"</identifier><datestamp>{datestamp}</datestamp></header></record>\n"
        )
    version_xml = "".join(
        f'<version version="v{n}"><date>{escape(date)}</date><size>12kb</size>'
        f"<source_type>D</source_type></version>"
        for n, date in enumerate(versions, 1)
    )
    return f"""<record>
<header>
 <identifier>oai:arXiv.org:{escape(arxiv_id)}</identifier>
 <datestamp>{datestamp}</datestamp>
 <setSpec>cs</setSpec>
</header>
<metadata>
<arXivRaw xmlns="http://arxiv.org/OAI/arXivRaw/" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
xsi:schemaLocation="http://arxiv.org/OAI/arXivRaw/ http://arxiv.org/OAI/arXivRaw.xsd">
<id>{escape(arxiv_id)}</id><submitter>Someone</submitter>{version_xml}<title>{escape(title)}</title>\
<authors>{escape(authors)}</authors><categories>{escape(categories)}</categories>\
<license>http://arxiv.org/licenses/nonexclusive-distrib/1.0/</license>\
<abstract>  {escape(abstract)}
</abstract>
</arXivRaw>
</metadata>
</record>
"""


def oai_list_records(
    records: Iterable[str], *, token: str | None, cursor: int, complete_list_size: int
) -> bytes:
    """A `ListRecords` page; `token=None` makes it the last page (an empty token)."""
    token_xml = (
        f'<resumptionToken cursor="{cursor}" completeListSize="{complete_list_size}">'
        f"{escape(token or '')}</resumptionToken>"
    )
    body = "".join(records)
    return f"{_OAI_HEAD}<ListRecords>\n{body}{token_xml}\n</ListRecords>\n</OAI-PMH>\n".encode()


def _not_modified(request: web.Request, doc: _Document) -> bool:
    """RFC 9110 conditional GET: If-None-Match wins; else compare If-Modified-Since."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        wanted = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in wanted or doc.etag.removeprefix("W/") in wanted
    if_modified_since = request.headers.get("If-Modified-Since")
    if if_modified_since is not None:
        try:
            since = parsedate_to_datetime(if_modified_since)
            modified = parsedate_to_datetime(doc.last_modified)
        except (TypeError, ValueError):
            return False
        return modified <= since
    return False


class ArxivServer:
    """A scriptable local arXiv; use as `async with ArxivServer() as server:`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._port = port
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._script: deque[Scripted] = deque()
        self._rss: dict[str, _Document] = {}
        self._default_rss: _Document | None = None
        self._api_by_ids: dict[frozenset[str], bytes] = {}
        self._api_by_query: dict[str, bytes] = {}
        self._default_api: bytes | None = None
        self._corpus: list[Paper] | None = None
        self._authors: dict[str, _Document] = {}
        self._oai_first: bytes | None = None
        self._oai_pages: dict[str, bytes] = {}
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._arrivals = asyncio.Condition()

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/rss/{cats}", self._handle_rss)
        app.router.add_get("/api/query", self._handle_api)
        app.router.add_get("/a/{author_id}.atom", self._handle_author)
        app.router.add_get("/oai", self._handle_oai)
        app.router.add_get("/{tail:.*}", self._handle_other)
        # Cancel a handler when its client goes away (a client timeout), so slow
        # scripted answers do not outlive the test.
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        log.debug("local arXiv listening on %s", self.url)

    async def stop(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- addresses -----------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    @property
    def rss_url(self) -> str:
        """Counterpart of `https://rss.arxiv.org/rss/`."""
        return f"{self.url}/rss/"

    @property
    def api_url(self) -> str:
        """Counterpart of `https://export.arxiv.org/api/query`."""
        return f"{self.url}/api/query"

    @property
    def author_feed_url(self) -> str:
        """Counterpart of `https://arxiv.org/a/`."""
        return f"{self.url}/a/"

    @property
    def oai_url(self) -> str:
        """Counterpart of `https://oaipmh.arxiv.org/oai`."""
        return f"{self.url}/oai"

    # -- content -------------------------------------------------------------------

    def set_rss(
        self,
        body: bytes,
        *,
        categories: str | Iterable[str] | None = None,
        etag: str | None = None,
        last_modified: str | datetime | None = None,
    ) -> None:
        """Serve `body` for a category set (`"cs.AI+cs.LG"` or a list), or for any set.

        Without `etag` one is derived from the body; without `last_modified` it is
        now. Calling again replaces the listing, like arXiv's nightly rebuild.
        """
        doc = _document(body, RSS_CONTENT_TYPE, etag, last_modified)
        if categories is None:
            self._default_rss = doc
        else:
            self._rss[_category_key(categories)] = doc

    def set_api(
        self,
        body: bytes,
        *,
        id_list: Iterable[str] | None = None,
        search_query: str | None = None,
    ) -> None:
        """Serve `body` to API queries with exactly these ids, this query, or (neither) any."""
        if id_list is not None:
            self._api_by_ids[frozenset(id_list)] = body
        elif search_query is not None:
            self._api_by_query[search_query] = body
        else:
            self._default_api = body

    def set_api_corpus(self, papers: Iterable[Paper]) -> None:
        """Answer `search_query` requests from these papers (a query set with `set_api` wins).

        Queries of ANDed `au:`, `all:` and `cat:` terms are evaluated; results come
        newest `published` first (the `sortBy=submittedDate` order), paged by `start`
        and `max_results`. Anything else gets arXiv's HTTP 400 error document.
        """
        self._corpus = list(papers)

    def api_requests(self, search_query: str | None = None) -> list[RecordedRequest]:
        """The API requests received (with this exact `search_query`, when given)."""
        return [
            r
            for r in self.requests
            if r.path == "/api/query"
            and (search_query is None or r.query.get("search_query") == search_query)
        ]

    def set_author_feed(
        self,
        author_id: str,
        body: bytes,
        *,
        etag: str | None = None,
        last_modified: str | datetime | None = None,
    ) -> None:
        """Serve `body` at `/a/<author_id>.atom`; unknown ids answer 404."""
        self._authors[author_id] = _document(body, ATOM_CONTENT_TYPE, etag, last_modified)

    def set_oai(self, first: bytes, by_token: Mapping[str, bytes] | None = None) -> None:
        """Serve `first` to a fresh ListRecords request and `by_token[t]` to resumptionToken=t.

        Any other token answers `badResumptionToken`, as arXiv does for expired ones.
        """
        self._oai_first = first
        self._oai_pages = dict(by_token or {})

    def enqueue(self, *responses: Scripted) -> None:
        """Queue scripted answers; each is used once, in order, by a matching request."""
        self._script.extend(responses)

    @property
    def pending_scripts(self) -> int:
        return len(self._script)

    async def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Wait until at least `count` requests have arrived; return them all."""
        async with self._arrivals:
            await asyncio.wait_for(
                self._arrivals.wait_for(lambda: len(self.requests) >= count), timeout
            )
        return list(self.requests)

    # -- serving -------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=CIMultiDict(request.headers),
                arrived=time.monotonic(),
            )
        )
        async with self._arrivals:
            self._arrivals.notify_all()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            scripted = self._take_script(request.path)
            if scripted is None:
                return await handler(request)
            return await self._serve_scripted(request, scripted, handler)
        finally:
            self.in_flight -= 1

    def _take_script(self, path: str) -> Scripted | None:
        for scripted in self._script:
            if scripted.path is None or path.startswith(scripted.path):
                self._script.remove(scripted)
                return scripted
        return None

    async def _serve_scripted(
        self, request: web.Request, scripted: Scripted, handler: Handler
    ) -> web.StreamResponse:
        if scripted.delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), scripted.delay)
        if scripted.passthrough:
            return await handler(request)
        if scripted.disconnect:
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=499)  # never reaches the client
        headers = CIMultiDict(scripted.headers)
        headers.setdefault("Content-Type", scripted.content_type)
        if scripted.truncate_at is None and not scripted.chunked:
            return web.Response(status=scripted.status, body=scripted.body, headers=headers)
        resp = web.StreamResponse(status=scripted.status, headers=headers)
        if scripted.chunked:
            resp.enable_chunked_encoding()
        else:
            resp.content_length = len(scripted.body)
        await resp.prepare(request)
        body = scripted.body
        if scripted.truncate_at is not None:
            await resp.write(body[: scripted.truncate_at])
            if request.transport is not None:
                request.transport.close()
            return resp
        for start in range(0, len(body), 16 * 1024):
            await resp.write(body[start : start + 16 * 1024])
        await resp.write_eof()
        return resp

    @staticmethod
    def _serve_document(request: web.Request, doc: _Document) -> web.Response:
        headers = {"ETag": doc.etag, "Last-Modified": doc.last_modified}
        if _not_modified(request, doc):
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = doc.content_type
        return web.Response(status=200, body=doc.body, headers=headers)

    async def _handle_rss(self, request: web.Request) -> web.Response:
        key = _category_key(request.match_info["cats"])
        doc = self._rss.get(key) or self._default_rss
        if doc is None:
            doc = _document(empty_rss(key), RSS_CONTENT_TYPE, None, None)
        return self._serve_document(request, doc)

    async def _handle_api(self, request: web.Request) -> web.Response:
        ids = [part for part in request.query.get("id_list", "").split(",") if part]
        for arxiv_id in ids:
            if not _ARXIV_ID.fullmatch(arxiv_id):
                error = api_error_feed(
                    f"incorrect id format for {arxiv_id}", f"incorrect_id_format_for_{arxiv_id}"
                )
                return web.Response(
                    status=400, body=error, headers={"Content-Type": ATOM_CONTENT_TYPE}
                )
        body: bytes | None = None
        if ids:
            body = self._api_by_ids.get(frozenset(ids))
        if body is None and "search_query" in request.query:
            body = self._api_by_query.get(request.query["search_query"])
            if body is None and self._corpus is not None and not ids:
                return self._answer_from_corpus(request, self._corpus)
        if body is None:
            body = self._default_api if self._default_api is not None else empty_api_feed()
        return web.Response(status=200, body=body, headers={"Content-Type": ATOM_CONTENT_TYPE})

    @staticmethod
    def _answer_from_corpus(request: web.Request, corpus: list[Paper]) -> web.Response:
        query = request.query["search_query"]
        found = evaluate_query(query, corpus)
        try:
            start = int(request.query.get("start", "0"))
            max_results = int(request.query.get("max_results", "10"))
        except ValueError:
            found = None
        if found is None:
            error = api_error_feed(f"malformed query {query}", "malformed_query")
            return web.Response(status=400, body=error, headers={"Content-Type": ATOM_CONTENT_TYPE})
        oldest = datetime.min.replace(tzinfo=UTC)
        if request.query.get("sortBy") == "submittedDate":
            descending = request.query.get("sortOrder", "descending") == "descending"
            found.sort(key=lambda p: (p.published or oldest, p.id), reverse=descending)
        page = found[start : start + max_results]
        body = api_feed(page, total=len(found), start=start)
        return web.Response(status=200, body=body, headers={"Content-Type": ATOM_CONTENT_TYPE})

    async def _handle_author(self, request: web.Request) -> web.Response:
        doc = self._authors.get(request.match_info["author_id"])
        if doc is None:
            return web.Response(status=404, text="<html><body>Not Found</body></html>")
        return self._serve_document(request, doc)

    async def _handle_oai(self, request: web.Request) -> web.Response:
        query = request.query
        if query.get("verb") != "ListRecords":
            body = oai_error("badVerb", "Illegal OAI verb")
        elif "resumptionToken" in query:
            if set(query) != {"verb", "resumptionToken"}:
                body = oai_error("badArgument", "resumptionToken is an exclusive argument")
            else:
                token = query["resumptionToken"]
                page = self._oai_pages.get(token)
                body = page or oai_error("badResumptionToken", f"Bad resumption token: {token}")
        elif query.get("metadataPrefix") not in ("arXiv", "arXivRaw", "oai_dc"):
            body = oai_error("cannotDisseminateFormat", "Unknown metadata format")
        else:
            body = self._oai_first or oai_error("noRecordsMatch", "No records match")
        return web.Response(status=200, body=body, headers={"Content-Type": XML_CONTENT_TYPE})

    async def _handle_other(self, request: web.Request) -> web.Response:
        return web.Response(status=404, text="<html><body>Not Found</body></html>")


async def _serve_forever(args: argparse.Namespace) -> None:
    server = ArxivServer(args.host, args.port)
    if args.rss is not None:
        server.set_rss(args.rss.read_bytes())
    if args.api is not None:
        server.set_api(args.api.read_bytes())
    for spec in args.author:
        author_id, _, path = spec.partition("=")
        server.set_author_feed(author_id, Path(path).read_bytes())
    async with server:
        print(
            f"local arXiv on {server.url}: rss {server.rss_url}, api {server.api_url}", flush=True
        )
        await asyncio.Event().wait()  # until interrupted


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--rss", type=Path, help="RSS document served for every category set")
    parser.add_argument("--api", type=Path, help="Atom document served for every API query")
    parser.add_argument(
        "--author", action="append", default=[], metavar="ID=FILE", help="an author feed"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args))


if __name__ == "__main__":
    main()
