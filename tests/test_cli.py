"""The command line through click's runner: run --once, clusters list/show, error paths."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from aggregator.operate.cli import main


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_run_once_then_list_shows_one_cluster_of_five(workdir: Path) -> None:
    code, _, err = invoke("run", "--once")
    assert code == 0, err
    assert "5 new article(s); 1 story published" in err
    code, out, _ = invoke("clusters", "list", "--json")
    clusters = json.loads(out)
    assert code == 0 and len(clusters) == 1 and clusters[0]["size"] == 5
    code, out, _ = invoke("clusters", "show", str(clusters[0]["id"]), "--json")
    shown = json.loads(out)
    assert {"id", "title", "articles"} <= set(shown)
    assert len(shown["articles"]) == 5
    assert all({"id", "title", "source", "url"} <= set(a) for a in shown["articles"])
    assert [a["tier"] for a in shown["articles"]].count("event") == 4


def test_second_run_changes_nothing(workdir: Path) -> None:
    invoke("run", "--once")
    first = json.loads(invoke("clusters", "list", "--json")[1])
    code, _, err = invoke("run", "--once")
    assert code == 0 and "0 new article(s)" in err
    assert json.loads(invoke("clusters", "list", "--json")[1]) == first


def test_human_output_of_list_and_show(workdir: Path) -> None:
    invoke("run", "--once")
    code, out, _ = invoke("clusters", "list")
    assert code == 0 and "HEADLINE" in out and "government forces" in out
    code, out, _ = invoke("clusters", "show", "1")
    assert code == 0 and "same event: link to the cluster" in out


def test_unknown_cluster_is_one_line_and_exit_1(workdir: Path) -> None:
    invoke("run", "--once")
    code, _, err = invoke("clusters", "show", "42")
    assert code == 1
    assert err.strip() == "aggregator: error: no such cluster: 42"


def test_bad_config_is_one_line_and_exit_1(workdir: Path) -> None:
    bad = workdir / "bad.toml"
    bad.write_text("databse = 'x.db'\n")
    code, _, err = invoke("--config", str(bad), "clusters", "list")
    assert code == 1
    assert err.strip() == f"aggregator: error: {bad}: databse: unknown key"


def test_every_command_has_help_with_an_example() -> None:
    for args in (["run"], ["clusters", "list"], ["clusters", "show"]):
        code, out, _ = invoke(*args, "--help")
        assert code == 0 and "Example" in out
