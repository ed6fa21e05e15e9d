"""arXiv identifiers, feed parsing and the polite HTTP client. Nothing here knows Discord."""
