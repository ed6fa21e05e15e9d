"""paperbell: arXiv paper alerts for Discord."""
