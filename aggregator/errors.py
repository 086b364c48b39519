"""The one exception tree of the package; third-party errors are translated at module boundaries.

    AggregatorError
    ├── ConfigError        the configuration file, environment or flags are invalid
    ├── SourceError        one source could not be read (network, file, HTTP status)
    │   ├── FetchError     HTTP: network, time or size limit, redirects, error status
    │   │                  (defined in fetch.py, with .status and .retry_after_s)
    │   └── ParseError     its bytes yielded no usable entries
    ├── StorageError       the database could not be opened or written
    ├── NotFoundError      an id names nothing (cluster, article, source)
    └── UsageError         a request that cannot be carried out as asked
        └── URLError       a URL refused where it comes in (feeds add, OPML, [[sources]])
"""


class AggregatorError(Exception):
    """Root of every error the package raises on purpose."""


class ConfigError(AggregatorError):
    """The configuration is invalid; the message names the file, key and reason."""


class SourceError(AggregatorError):
    """A source could not be read; it affects that source alone."""


class ParseError(SourceError):
    """A document yielded no usable entries."""


class StorageError(AggregatorError):
    """The database could not be opened, read or written."""


class NotFoundError(AggregatorError):
    """An id given by the user names nothing."""


class UsageError(AggregatorError):
    """An operator's request that cannot be carried out as asked (merge one cluster...)."""


class URLError(UsageError):
    """A URL refused at the door: control characters, spaces, not http(s), a bad host."""
