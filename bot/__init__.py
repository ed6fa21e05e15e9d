"""paperbell: arXiv paper alerts for Discord."""

__version__ = "0.1.0"
