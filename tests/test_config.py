"""Settings: defaults, the TOML file, the environment; bad input named in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.config import load, parse_duration, public_link
from aggregator.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "a.toml"
    path.write_text(text)
    return path


def test_the_shipped_default_config_loads_with_one_directory_source() -> None:
    settings = load(ROOT / "config" / "aggregator.toml", environ={})
    assert [(s.name, s.kind, s.location) for s in settings.sources] == [
        ("seeds", "directory", "seeds")]
    assert settings.database == Path("var/aggregator.db")
    assert settings.server.host == "127.0.0.1"


@pytest.mark.parametrize(("text", "message"), [
    ("colour = 1", "a.toml: colour: unknown key"),
    ("[cluster]\nthreshold = 0.5", "a.toml: cluster.threshold: unknown key"),
    ("interval = 'soon'", "a.toml: interval: not a duration: 'soon'"),
    ("interval = '0s'", "a.toml: interval: must be positive"),
    ("[[sources]]\nname = 'x'\nurl = 'ftp://example.com/feed'",
     "a.toml: sources[0].url: not an http(s) URL: 'ftp://example.com/feed'"),
    ("[[sources]]\nname = 'x'\npath = 'd'\nflavour = 1", "a.toml: sources[0].flavour: unknown key"),
    ("[cluster]\nevent = 1.5", "a.toml: cluster.event: expected a number between 0 and 1"),
    ("[server]\nport = 70000", "a.toml: server.port: not a TCP port"),
    ("x = [", "a.toml: invalid TOML"),
    ("[publish]\nhalf_life = 'soon'", "a.toml: publish.half_life: not a duration: 'soon'"),
    ("[publish]\nhalf_life = 0", "a.toml: publish.half_life: must be positive"),
    ("[publish]\ntop_min_sources = 0", "a.toml: publish.top_min_sources: must be at least 1"),
    ("[publish]\ntop_min_sources = 'two'",
     "a.toml: publish.top_min_sources: expected a non-negative integer, got 'two'"),
    ("[[sources]]\nname = 'x'\npath = 'd'\ncategory = 'World News'",
     "a.toml: sources[0].category: expected a category name of lower-case letters, digits, "
     "'-' and '_' (up to 32, e.g. \"world\"), got 'World News'"),
    ("[[sources]]\nname = 'x'\npath = 'd'\ncategory = 7", "a.toml: sources[0].category: "),
    ("[[sources]]\nname = 'x'\npath = 'd'\ncategory = '../x'", "a.toml: sources[0].category: "),
])
def test_bad_config_is_rejected_naming_file_key_and_reason(
        tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, text), environ={})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_the_ranked_views_settings_and_a_sources_category(tmp_path: Path) -> None:
    assert load(ROOT / "config" / "aggregator.toml", environ={}).sources[0].category == "world"
    defaults = load(write(tmp_path, "[[sources]]\nname = 'x'\npath = 'd'\n"), environ={})
    assert (defaults.publish.half_life_s, defaults.publish.top_min_sources) == (43200, 2)
    assert defaults.sources[0].category is None
    settings = load(write(tmp_path, "[publish]\nhalf_life = '6h'\ntop_min_sources = 3\n"
                                    "[[sources]]\nname = 'x'\npath = 'd'\ncategory = 'tech-2'\n"),
                    environ={"AGGREGATOR_PUBLISH_HALF_LIFE": "1d"})
    assert (settings.publish.half_life_s, settings.publish.top_min_sources) == (86400, 3)
    assert settings.sources[0].category == "tech-2"


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load(tmp_path / "nope.toml", environ={})


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "database = 'a.db'\n[server]\nport = 8080\n")
    settings = load(path, environ={"AGGREGATOR_SERVER_PORT": "9090",
                                   "AGGREGATOR_DATABASE": "b.db"})
    assert settings.server.port == 9090
    assert settings.database == Path("b.db")


def test_bad_environment_value_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"environment: server\.port"):
        load(write(tmp_path, ""), environ={"AGGREGATOR_SERVER_PORT": "-3"})


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("2h", 7200),
                                               ("1d", 86400), (300, 300)])
def test_durations(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == seconds


def test_private_networks_are_refused_unless_the_operator_allows_them(tmp_path: Path) -> None:
    assert load(write(tmp_path, ""), environ={}).fetch.allow_private_networks == ()
    listed = load(write(tmp_path, '[fetch]\nallow_private_networks = ["127.0.0.0/8", '
                                  '"192.168.1.7", "fd00::/8"]\n'), environ={})
    assert [str(n) for n in listed.fetch.allow_private_networks] == [
        "127.0.0.0/8", "192.168.1.7/32", "fd00::/8"]
    every = load(write(tmp_path, "[fetch]\nallow_private_networks = true\n"), environ={})
    assert [str(n) for n in every.fetch.allow_private_networks] == ["0.0.0.0/0", "::/0"]


@pytest.mark.parametrize(("raw", "networks"), [
    ('["127.0.0.0/8"]', ["127.0.0.0/8"]), ("true", ["0.0.0.0/0", "::/0"]), ("false", []),
    ("10.0.0.0/8,192.168.0.0/16", ["10.0.0.0/8", "192.168.0.0/16"])])
def test_private_networks_from_the_environment_are_read_as_toml(
        tmp_path: Path, raw: str, networks: list[str]) -> None:
    settings = load(write(tmp_path, "[fetch]\nallow_private_networks = ['10.9.0.0/16']\n"),
                    environ={"AGGREGATOR_FETCH_ALLOW_PRIVATE_NETWORKS": raw})
    assert [str(n) for n in settings.fetch.allow_private_networks] == networks


@pytest.mark.parametrize(("text", "message"), [
    ('[fetch]\nallow_private_networks = ["localhost"]',
     "a.toml: fetch.allow_private_networks: not a network: "),
    ("[fetch]\nallow_private_networks = 8", "a.toml: fetch.allow_private_networks: expected "
                                            "true, false or a list of networks"),
    ('[[sources]]\nname = "x"\nurl = "http://news.example/a b"',
     "a.toml: sources[0].url: a space at position 22 is not allowed in a URL"),
])
def test_bad_private_networks_and_source_urls_are_named(
        tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, text), environ={})
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_source_url_keeps_its_credentials_apart(tmp_path: Path) -> None:
    settings = load(write(tmp_path, '[[sources]]\nname = "m"\n'
                                    'url = "https://ann:pw-config-77@News.Example/m.xml"\n'),
                    environ={})
    (source,) = settings.sources
    assert source.location == "https://news.example/m.xml"
    assert source.credentials is not None and source.credentials.password == "pw-config-77"
    assert "pw-config-77" not in repr(settings)


def test_the_feeds_link_follows_the_server_unless_it_is_set() -> None:
    shipped = ROOT / "config" / "aggregator.toml"
    assert public_link(load(shipped, environ={})) == "http://127.0.0.1:8080/"
    moved = load(shipped, environ={"AGGREGATOR_SERVER_PORT": "36193"})
    assert public_link(moved) == "http://127.0.0.1:36193/"
    assert public_link(load(shipped, environ={"AGGREGATOR_SERVER_HOST": "::1"})) == (
        "http://[::1]:8080/")
    assert public_link(load(shipped, environ={"AGGREGATOR_SERVER_HOST": "0.0.0.0"})) == (
        "http://localhost:8080/")
    public = load(shipped, environ={"AGGREGATOR_SERVER_PORT": "36193",
                                    "AGGREGATOR_PUBLISH_LINK": "https://news.example.org/"})
    assert public_link(public) == "https://news.example.org/"  # behind a reverse proxy


def test_an_explicit_link_in_the_file_wins_over_the_server(tmp_path: Path) -> None:
    path = write(tmp_path, '[publish]\nlink = "https://news.example.org/feeds/"\n'
                           "[server]\nport = 9000\n")
    assert public_link(load(path, environ={})) == "https://news.example.org/feeds/"
    with pytest.raises(ConfigError, match=r"publish\.link: not an http"):
        load(write(tmp_path, '[publish]\nlink = "ftp://x"\n'), environ={})


def test_the_dask_cluster_is_off_unless_its_scheduler_is_named(tmp_path: Path) -> None:
    assert load(write(tmp_path, ""), environ={}).fetch.cluster is None
    conf = load(write(tmp_path, '[fetch]\ncluster = "tcp://10.0.0.5:8786"\n'), environ={}).fetch
    assert (conf.cluster, conf.cluster_fallback) == ("tcp://10.0.0.5:8786", False)
    env = load(write(tmp_path, '[fetch]\ncluster = "tcp://10.0.0.5:8786"\n'), environ={
        "AGGREGATOR_FETCH_CLUSTER": "tls://[fd00::5]:8786",
        "AGGREGATOR_FETCH_CLUSTER_FALLBACK": "true"}).fetch
    assert (env.cluster, env.cluster_fallback) == ("tls://[fd00::5]:8786", True)
    assert load(write(tmp_path, ""), environ={"AGGREGATOR_FETCH_CLUSTER": ""}).fetch.cluster is None


@pytest.mark.parametrize("address", ["10.0.0.5:8786", "http://10.0.0.5:8786", "tcp://10.0.0.5",
                                     "tcp://10.0.0.5:99999", "tcp://a b:1"])
def test_a_bad_scheduler_address_is_named(tmp_path: Path, address: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, f'[fetch]\ncluster = "{address}"\n'), environ={})
    assert str(info.value) == (f"{tmp_path / 'a.toml'}: fetch.cluster: expected a Dask "
                               f"scheduler's address such as \"tcp://10.0.0.5:8786\" (or "
                               f"tls://), got {address!r}")
