"""Hostile arXiv documents for tests and benches: real listing shapes, stranger-controlled text.

The item layout is rss.arxiv.org's (see tests/fixtures/own_rss_edge_cases.xml);
only the text inside the elements is hostile.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

PUB_DATE = "Tue, 03 Dec 2024 00:00:00 -0500"
LAST_BUILD = "Tue, 03 Dec 2024 05:00:03 +0000"
OVERFLOW_DATE = "Fri, 31 Dec 9999 23:00:00 -1200"


def pathological(size: int) -> dict[str, str]:
    """Author/title texts built to make backtracking or rescanning cleaners blow up."""
    half = size // 2
    return {
        "nested parens": "(" * half + ")" * half,
        "unclosed parens": "(" * size,
        "spaces then no paren": " " * size + "x",
        "spaces before each paren": " (" * half,
        "alternating groups": "a (b)" * (size // 5),
        "groups with spaces": "A B" + " " * (size // 4) + "(x)" + " " * (size // 4) + "(y)" * 100,
        "commas and ands": ", and " * (size // 6),
        "tex accents with spaces": "\\'" + " " * size + "1",
        "tex braces with spaces": "\\'{" + " " * size + "1",
        "tex letters": "\\l" * half,
        "angle brackets": "<" * size,
        "collaboration words": " and collaboration team" * (size // 24),
    }


def rss_item(
    number: int,
    *,
    title: str = "A perfectly ordinary title",
    creators: str = "Alice Smith, Bob Jones",
    abstract: str = "An ordinary abstract.",
    categories: tuple[str, ...] = ("cs.LG",),
    pub_date: str = PUB_DATE,
    journal_ref: str | None = None,
) -> str:
    """One listing item for new-style id 2412.NNNNN (number 1..99999)."""
    paper_id = f"2412.{number:05d}"
    cats = "".join(f"<category>{escape(c)}</category>" for c in categories)
    ref = (
        f"<arxiv:journal_reference>{escape(journal_ref)}</arxiv:journal_reference>"
        if journal_ref is not None
        else ""
    )
    return f"""    <item>
      <title>{escape(title)}</title>
      <link>https://arxiv.org/abs/{paper_id}</link>
      <description>arXiv:{paper_id}v1 Announce Type: new
Abstract: {escape(abstract)}</description>
      <guid isPermaLink="false">oai:arXiv.org:{paper_id}v1</guid>
      {cats}
      <pubDate>{escape(pub_date)}</pubDate>
      <arxiv:announce_type>new</arxiv:announce_type>
      <dc:rights>http://creativecommons.org/licenses/by/4.0/</dc:rights>
      <dc:creator>{escape(creators)}</dc:creator>{ref}
    </item>
"""


def rss_listing(
    items: list[str] | str,
    *,
    categories: str = "cs.LG",
    pub_date: str | None = PUB_DATE,
    last_build: str | None = LAST_BUILD,
) -> bytes:
    """A complete rss.arxiv.org listing around `items`."""
    body = items if isinstance(items, str) else "".join(items)
    pub = f"<pubDate>{escape(pub_date)}</pubDate>" if pub_date is not None else ""
    build = f"<lastBuildDate>{escape(last_build)}</lastBuildDate>" if last_build else ""
    cats = escape(categories)
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<rss xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/" \
xmlns:atom="http://www.w3.org/2005/Atom" xmlns:content="http://purl.org/rss/1.0/modules/content/" \
version="2.0">
  <channel>
    <title>{cats} updates on arXiv.org</title>
    <link>http://rss.arxiv.org/rss/{cats}</link>
    <description>{cats} updates on the arXiv.org e-print archive.</description>
    <docs>http://www.rssboard.org/rss-specification</docs>
    <language>en-us</language>
    {build}
    <managingEditor>rss-help@arxiv.org</managingEditor>
    {pub}
    <skipDays>
      <day>Saturday</day>
      <day>Sunday</day>
    </skipDays>
{body}  </channel>
</rss>
""".encode()
