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


BANK = ("Central bank holds rates at 4.5 percent\n"
        "The central bank kept its main rate at 4.5 percent on Wednesday as inflation eased "
        "for a third month. Governor Tomas Alder said rates would stay high for now.")


def test_search_prints_the_stories_holding_the_words_with_them_in_brackets(
        workdir: Path) -> None:
    (workdir / "seeds" / "bank.txt").write_text(BANK)
    invoke("run", "--once")
    code, out, err = invoke("search", "Alder", "rates")
    assert code == 0, err
    head, first, second = out.splitlines()
    assert head.split() == ["ID", "OUTLETS", "LATEST", "HEADLINE"]
    assert first.split()[1] == "1" and first.endswith("Central bank holds [rates] at 4.5 percent")
    # (about two lines of it; "rates" finds "rate": the index stems words)
    assert second.strip() == ("seeds: The central bank kept its main [rate] at 4.5 percent on "
                              "Wednesday as inflation eased for a third month. Governor Tomas "
                              "[Alder] said…")
    found = json.loads(invoke("search", "hama", "--json")[1])
    assert found["terms"] == ["hama"] and found["more"] is False
    (story,) = found["stories"]
    assert story["outlets"] == 2 and story["matched"] == ["hama"]  # Voz.us and seeds
    assert "[Hama]" in story["passage"] or "[Hama]" in story["title"]


def test_search_for_anything_typed_is_results_or_nothing_found(workdir: Path) -> None:
    invoke("run", "--once")
    for words, said in (([], "nothing found: give the words to look for\n"),
                        (['"', "*", "^", "-"], "nothing found: give the words to look for\n"),
                        (["NEAR(zebra", "hama)"], "nothing found for: near zebra hama\n"),
                        (["x" * 10_000], f"nothing found for: {'x' * 64}\n"),
                        (["zebra", "OR", "hama"], "nothing found for: zebra or hama\n")):
        code, out, err = invoke("search", *words)
        assert (code, out, err) == (0, said, ""), words
    code, out, _ = invoke("search", "--json", '"', "title:")
    assert code == 0 and json.loads(out) == {"terms": ["title"], "more": False, "stories": []}


def test_every_command_has_help_with_an_example() -> None:
    for args in (["run"], ["clusters", "list"], ["clusters", "show"], ["search"],
                 ["feeds", "add"]):
        code, out, _ = invoke(*args, "--help")
        assert code == 0 and "Example" in out
