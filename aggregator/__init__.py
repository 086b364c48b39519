"""aggregator: a deduplicating news-feed aggregator daemon."""

__version__ = "0.1.0"
