"""arXiv's public endpoints: the defaults of the settings and of `ArxivClient`, declared once."""

from __future__ import annotations

DEFAULT_RSS_URL = "https://rss.arxiv.org/rss/"
DEFAULT_API_URL = "https://export.arxiv.org/api/query"
DEFAULT_OAI_URL = "https://oaipmh.arxiv.org/oai"
