"""Settings: built-in defaults < the TOML file < AGGREGATOR_* environment < command-line flags.

Unknown keys are rejected with the file, key and reason in one line. Relative paths are taken
relative to the working directory, as with any command-line tool.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from ipaddress import ip_network
from pathlib import Path
from typing import Any

from . import urls
from .errors import ConfigError, URLError
from .model import Source
from .network import EVERY_NETWORK, Network

DEFAULT_CONFIG = Path("config/aggregator.toml")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str | int | float, *, what: str = "duration") -> int:
    """'90s', '15m', '2h', '3d', '1w' or a number of seconds -> seconds (> 0)."""
    if isinstance(text, bool):
        raise ConfigError(f"{what}: not a duration: {text!r}")
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        match = _DURATION.match(text)
        if not match:
            raise ConfigError(f"{what}: not a duration: {text!r} (use e.g. 90s, 15m, 2h, 3d)")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ConfigError(f"{what}: must be positive: {text!r}")
    return int(seconds)


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """Clustering thresholds; see config/aggregator.toml for where each number came from."""

    near_duplicate: float = 0.55
    event: float = 0.22
    bridge: float = 0.40
    links: int = 3
    entity_weight: float = 0.5
    min_shared_terms: int = 2
    window_s: int = 4 * 86400
    terms_per_article: int = 64


@dataclass(frozen=True, slots=True)
class ReassessSettings:
    """The background re-assessment of the recent window; see config/aggregator.toml."""

    enabled: bool = True
    interval_s: int = 300  # at most this long between two re-assessments (if anything changed)
    after: int = 100  # ... and right after an ingest cycle that stored this many articles
    window_s: int = 0  # the window re-assessed; 0: the same-event tier's [cluster] window
    neighbours: int = 5
    floor: float = 0.15
    threshold: float = 0.12
    connectivity: float = 1.0
    hysteresis: float = 0.01


@dataclass(frozen=True, slots=True)
class FetchSettings:
    """How the daemon talks to the web; see config/aggregator.toml."""

    workers: int = 8  # sources polled at once (threads: they wait on the network)
    processes: int = 2  # worker processes that parse, extract and clean; 0: in the threads
    per_host: int = 2  # requests in flight per host name
    connect_timeout_s: int = 10
    read_timeout_s: int = 30
    total_timeout_s: int = 60
    max_bytes: int = 10 * 1024 * 1024
    full_text_below: int = 600  # an entry with less text than this fetches its article page
    max_backoff_s: int = 86400
    # private networks every fetch may reach (loopback, LAN, ...): none unless the operator
    # says so; a source's own allow_private opens them all for that source alone
    allow_private_networks: tuple[Network, ...] = ()
    # the Dask scheduler whose workers do the processes' part ("tcp://HOST:8786"); None: the
    # local processes above. With cluster_fallback, the local processes stand in while the
    # scheduler cannot be reached
    cluster: str | None = None
    cluster_fallback: bool = False


@dataclass(frozen=True, slots=True)
class PublishSettings:
    interval_s: int = 60  # how often the feed files are rebuilt when something changed
    rss_path: Path = Path("var/feed.xml")
    atom_path: Path = Path("var/atom.xml")
    title: str = "aggregator: merged news"
    link: str | None = None  # the feeds' public address; None: where the server listens
    max_items: int = 100
    max_age_s: int = 30 * 86400
    # the ranked views (stories.rank): a story's weight, its number of outlets, halves every
    # half-life of its latest report's age; with 12 hours, yesterday's story of four outlets
    # weighs what a story of one outlet does now
    half_life_s: int = 12 * 3600
    top_min_sources: int = 2  # /top/feed.xml: the stories of at least this many outlets


@dataclass(frozen=True, slots=True)
class ServerSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    threads: int = 8


@dataclass(frozen=True, slots=True)
class Settings:
    database: Path = Path("var/aggregator.db")
    interval_s: int = 900
    log_level: str = "INFO"
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    reassess: ReassessSettings = field(default_factory=ReassessSettings)
    fetch: FetchSettings = field(default_factory=FetchSettings)
    publish: PublishSettings = field(default_factory=PublishSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    sources: tuple[Source, ...] = ()
    origin: str = "<defaults>"


# section -> key -> (attribute, converter)
def _path(v: Any, what: str) -> Path:
    if not isinstance(v, str) or not v:
        raise ConfigError(f"{what}: expected a path string, got {v!r}")
    return Path(v)


def _str(v: Any, what: str) -> str:
    if not isinstance(v, str):
        raise ConfigError(f"{what}: expected a string, got {v!r}")
    return v


def _int(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ConfigError(f"{what}: expected a non-negative integer, got {v!r}")
    return v


def _positive(v: Any, what: str) -> int:
    number = _int(v, what)
    if number < 1:
        raise ConfigError(f"{what}: must be at least 1, got {v!r}")
    return number


def _port(v: Any, what: str) -> int:
    port = _int(v, what)
    if not 0 <= port <= 65535:
        raise ConfigError(f"{what}: not a TCP port: {v!r}")
    return port


def _fraction(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= v <= 1.0:
        raise ConfigError(f"{what}: expected a number between 0 and 1, got {v!r}")
    return float(v)


def _positive_number(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
        raise ConfigError(f"{what}: expected a positive number, got {v!r}")
    return float(v)


def _bool(v: Any, what: str) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(f"{what}: expected true or false, got {v!r}")
    return v


def _duration(v: Any, what: str) -> int:
    return parse_duration(v, what=what)


def check_url(v: Any, what: str) -> str:
    """An http(s) URL, normalised (urls.parse), without any user:password@."""
    return feed_url(v, what).url


def feed_url(v: Any, what: str) -> urls.FeedURL:
    try:
        return urls.parse(v, what)
    except URLError as exc:
        raise ConfigError(str(exc)) from exc


def _networks(v: Any, what: str) -> tuple[Network, ...]:
    """true (every network), false (none), or a list of networks: "192.168.1.0/24",
    "10.0.0.7" (one address), "fd00::/8"."""
    if v is True or v is False:
        return EVERY_NETWORK if v else ()
    if isinstance(v, str):  # from the environment, a bare value that is not TOML
        v = [part for part in v.split(",") if part.strip()]
    if not isinstance(v, list):
        raise ConfigError(f"{what}: expected true, false or a list of networks such as "
                          f"[\"192.168.1.0/24\"], got {v!r}")
    try:
        return tuple(ip_network(str(n).strip(), strict=False) for n in v)
    except ValueError as exc:
        raise ConfigError(f"{what}: not a network: {exc} (write e.g. \"127.0.0.0/8\" or "
                          "\"192.168.1.10\")") from exc


_SCHEDULER = re.compile(r"(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})")


def _scheduler(v: Any, what: str) -> str | None:
    """A Dask scheduler's address, tcp://HOST:PORT or tls://HOST:PORT; "" for none."""
    address = _str(v, what).strip()
    if not address:
        return None
    match = _SCHEDULER.fullmatch(address)
    if match is None or not 0 < int(match.group(3)) < 65536:
        raise ConfigError(f"{what}: expected a Dask scheduler's address such as "
                          f"\"tcp://10.0.0.5:8786\" (or tls://), got {v!r}")
    return address


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _level(v: Any, what: str) -> str:
    level = _str(v, what).upper()
    if level not in _LEVELS:
        raise ConfigError(f"{what}: expected one of {', '.join(_LEVELS)}, got {v!r}")
    return level


_TOP = {"database": ("database", _path), "interval": ("interval_s", _duration),
        "log_level": ("log_level", _level)}
_SECTIONS: dict[str, dict[str, tuple[str, Any]]] = {
    "cluster": {
        "near_duplicate": ("near_duplicate", _fraction),
        "event": ("event", _fraction),
        "bridge": ("bridge", _fraction),
        "links": ("links", _positive),
        "entity_weight": ("entity_weight", _fraction),
        "min_shared_terms": ("min_shared_terms", _int),
        "window": ("window_s", _duration),
        "terms_per_article": ("terms_per_article", _int),
    },
    "reassess": {
        "enabled": ("enabled", _bool),
        "interval": ("interval_s", _duration),
        "after": ("after", _positive),
        "window": ("window_s", _duration),
        "neighbours": ("neighbours", _positive),
        "floor": ("floor", _fraction),
        "threshold": ("threshold", _fraction),
        "connectivity": ("connectivity", _positive_number),
        "hysteresis": ("hysteresis", _fraction),
    },
    "fetch": {
        "workers": ("workers", _positive),
        "processes": ("processes", _int),
        "per_host": ("per_host", _positive),
        "connect_timeout": ("connect_timeout_s", _duration),
        "read_timeout": ("read_timeout_s", _duration),
        "total_timeout": ("total_timeout_s", _duration),
        "max_bytes": ("max_bytes", _positive),
        "full_text_below": ("full_text_below", _int),
        "max_backoff": ("max_backoff_s", _duration),
        "allow_private_networks": ("allow_private_networks", _networks),
        "cluster": ("cluster", _scheduler),
        "cluster_fallback": ("cluster_fallback", _bool),
    },
    "publish": {
        "interval": ("interval_s", _duration),
        "rss": ("rss_path", _path),
        "atom": ("atom_path", _path),
        "title": ("title", _str),
        "link": ("link", check_url),
        "max_items": ("max_items", _int),
        "max_age": ("max_age_s", _duration),
        "half_life": ("half_life_s", _duration),
        "top_min_sources": ("top_min_sources", _positive),
    },
    "server": {
        "enabled": ("enabled", _bool),
        "host": ("host", _str),
        "port": ("port", _port),
        "threads": ("threads", _int),
    },
}
_SOURCE_KEYS = {"name", "kind", "path", "url", "interval", "priority", "allow_private",
                "category"}
_CATEGORY = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


def check_category(v: Any, what: str) -> str:
    """A category's name, as its pages' address has it (/c/NAME/): lower-case letters, digits,
    '-' and '_', up to 32 characters."""
    if not isinstance(v, str) or not _CATEGORY.fullmatch(v):
        raise ConfigError(f"{what}: expected a category name of lower-case letters, digits, "
                          f"'-' and '_' (up to 32, e.g. \"world\"), got {v!r}")
    return v


def load(path: Path | None = None, *, environ: dict[str, str] | None = None) -> Settings:
    """Read settings from `path` (or the default file if present) and the environment."""
    environ = dict(os.environ if environ is None else environ)
    if path is None and environ.get("AGGREGATOR_CONFIG"):
        path = Path(environ["AGGREGATOR_CONFIG"])
    if path is None and DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG
    data: dict[str, Any] = {}
    origin = "<defaults>"
    if path is not None:
        data, origin = _read_toml(path), str(path)
    return _apply_env(_build(data, origin), environ)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such configuration file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc


def _build(data: dict[str, Any], origin: str) -> Settings:
    settings = Settings(origin=origin)
    top: dict[str, Any] = {}
    for key, value in data.items():
        where = f"{origin}: {key}"
        if key in _TOP:
            attr, conv = _TOP[key]
            top[attr] = conv(value, where)
        elif key in _SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: expected a [{key}] table")
            top[key] = _section(getattr(settings, key), key, value, origin)
        elif key != "sources":
            raise ConfigError(f"{where}: unknown key")
    if "sources" in data:
        default = top.get("interval_s", settings.interval_s)
        top["sources"] = _sources(data["sources"], origin, default_interval=default)
    return replace(settings, **top)


def _section(current: Any, name: str, table: dict[str, Any], origin: str) -> Any:
    changes = {}
    for key, value in table.items():
        where = f"{origin}: {name}.{key}"
        if key not in _SECTIONS[name]:
            raise ConfigError(f"{where}: unknown key")
        attr, conv = _SECTIONS[name][key]
        changes[attr] = conv(value, where)
    return replace(current, **changes)


def _sources(value: Any, origin: str, *, default_interval: int) -> tuple[Source, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{origin}: sources: expected [[sources]] tables")
    sources: list[Source] = []
    for index, table in enumerate(value):
        source = _source(table, f"{origin}: sources[{index}]", default_interval)
        if any(s.name == source.name for s in sources):
            raise ConfigError(f"{origin}: sources[{index}].name: duplicate name {source.name!r}")
        sources.append(source)
    return tuple(sources)


def _source(table: Any, where: str, default_interval: int) -> Source:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    unknown = sorted(set(table) - _SOURCE_KEYS)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key")
    name = _str(table.get("name", ""), f"{where}.name")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
        raise ConfigError(f"{where}.name: expected letters, digits, '.', '_' or '-', got {name!r}")
    kind = table.get("kind", "feed" if "url" in table else "directory")
    credentials = None
    if kind == "directory":
        location = str(_path(table.get("path"), f"{where}.path"))
    elif kind == "feed":
        url = feed_url(table.get("url"), f"{where}.url")
        location, credentials = url.url, url.credentials
    else:
        raise ConfigError(f"{where}.kind: expected 'directory' or 'feed', got {kind!r}")
    interval = _duration(table.get("interval", default_interval), f"{where}.interval")
    priority = table.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ConfigError(f"{where}.priority: expected an integer, got {priority!r}")
    allow_private = _bool(table.get("allow_private", False), f"{where}.allow_private")
    category = (check_category(table["category"], f"{where}.category")
                if "category" in table else None)
    return Source(name=name, kind=kind, location=location, interval_s=interval, priority=priority,
                  allow_private=allow_private, credentials=credentials, category=category)


def _apply_env(settings: Settings, environ: dict[str, str]) -> Settings:
    """AGGREGATOR_DATABASE=..., AGGREGATOR_SERVER_PORT=8081, AGGREGATOR_CLUSTER_EVENT=0.3 ..."""
    data: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith("AGGREGATOR_") or name == "AGGREGATOR_CONFIG":
            continue
        if name == "AGGREGATOR_DATA":
            continue  # evaluation data location, read by tests and benchmarks
        key = name.removeprefix("AGGREGATOR_").lower()
        value = _env_value(raw)
        section, _, sub = key.partition("_")
        if section in _SECTIONS and sub:
            data.setdefault(section, {})[sub] = value
        else:
            data[key] = value
    if not data:
        return settings
    overlay = _build(data, "environment")
    merged: dict[str, Any] = {"origin": settings.origin}
    for key in data:
        attr = _TOP[key][0] if key in _TOP else key
        if key in _SECTIONS:
            merged[attr] = _section(getattr(settings, key), key, data[key], "environment")
        else:
            merged[attr] = getattr(overlay, attr)
    return replace(settings, **merged)


def _env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


_WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]"})


def public_link(settings: Settings) -> str:
    """The address the feeds are published under: `[publish] link` when set (a public URL
    behind a reverse proxy), else where the server listens (`[server] host` and `port`, after
    the environment's overrides). A wildcard bind names no host: localhost stands in."""
    if settings.publish.link:
        return settings.publish.link
    host = settings.server.host.strip()
    host = "localhost" if host in _WILDCARDS else host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address in a URL
    return f"http://{host}:{settings.server.port}/"


def describe(settings: Settings) -> str:
    """The running configuration in one line, for the log."""
    sources = ", ".join(f"{s.name} ({s.kind} {urls.shown(s.location, s.credentials)})"
                        for s in settings.sources) or "none"
    private = ", ".join(map(str, settings.fetch.allow_private_networks)) or "none"
    return (f"config {settings.origin}; database {settings.database}; sources: {sources}; "
            f"feeds {settings.publish.rss_path} and {settings.publish.atom_path}; "
            f"private networks allowed: {private}; {_work(settings.fetch)}")


def _work(conf: FetchSettings) -> str:
    if not conf.cluster:
        return f"worker processes: {conf.processes}"
    fallback = (f", else {conf.processes} local processes"
                if conf.cluster_fallback and conf.processes else "")
    return f"workers: the Dask cluster at {conf.cluster}{fallback}"
