"""The stages are layers: every import in the package, at module level or inside a function,
points down them; no two packages and no two modules import each other, directly or round a
loop. (import-linter's contract in pyproject.toml says the same; `make lint` runs it.)"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "aggregator"
# the stages, lowest first; a module outside them is the base (rank 0), __main__ is the top
STAGES = ("ingest", "clustering", "stories", "operate")


@dataclass(frozen=True)
class Imports:
    edges: dict[str, set[str]]  # module -> the package's modules it imports

    @classmethod
    def read(cls, root: Path) -> Imports:
        modules = {_name(root, path): path for path in root.rglob("*.py")}
        edges: dict[str, set[str]] = {}
        for name, path in modules.items():
            package = name if path.name == "__init__.py" else name.rpartition(".")[0]
            found = {_known(target, modules) for target in _targets(path, package)}
            edges[name] = {t for t in found if t and t != name}
        return cls(edges)

    def upward(self) -> list[tuple[str, str]]:
        return sorted((a, b) for a, targets in self.edges.items() for b in targets
                      if rank(b) > rank(a))

    def package_cycles(self) -> list[list[str]]:
        packages: dict[str, set[str]] = {}
        for a, targets in self.edges.items():
            for b in targets:
                if stage(a) != stage(b):
                    packages.setdefault(stage(a), set()).add(stage(b))
        return loops(packages)

    def module_loops(self) -> list[list[str]]:
        return loops(self.edges)


def _name(root: Path, path: Path) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _targets(path: Path, package: str) -> Iterator[str]:
    """Every module an import statement of the file names (those inside functions too)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _known(target: str, modules: dict[str, Path]) -> str | None:
    """The package's module an import names (`from .x import f` names module x, not x.f)."""
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target or None


def stage(module: str) -> str:
    parts = module.split(".")
    if parts[1:] == ["__main__"]:
        return "__main__"
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in STAGES) else "base"


def rank(module: str) -> int:
    name = stage(module)
    return len(STAGES) + 1 if name == "__main__" else STAGES.index(name) + 1 if (
        name in STAGES) else 0


def loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_import_points_down_the_layers() -> None:
    imports = Imports.read(PACKAGE)
    assert len(imports.edges) > 40  # the whole package was read
    assert imports.upward() == []
    assert imports.package_cycles() == []
    assert imports.module_loops() == []


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "aggregator"
    for name, text in {"__init__.py": "", "ingest/__init__.py": "",
                       "operate/__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize(("files", "expected"), [
    ({"ingest/fetch.py": "def f():\n    from ..operate.cli import main\n",
      "operate/cli.py": "main = 1\n"},
     [("aggregator.ingest.fetch", "aggregator.operate.cli")]),
    ({"storage.py": "from .ingest import fetch\n", "ingest/fetch.py": ""},
     [("aggregator.storage", "aggregator.ingest.fetch")]),
    ({"model.py": "import aggregator.operate.cli\n", "operate/cli.py": ""},
     [("aggregator.model", "aggregator.operate.cli")]),
])
def test_the_check_finds_an_upward_import(tmp_path: Path, files: dict[str, str],
                                          expected: list[tuple[str, str]]) -> None:
    imports = Imports.read(_package(tmp_path, files))
    assert imports.upward() == expected
    assert imports.package_cycles() == []


def test_the_check_finds_loops_of_modules_and_packages(tmp_path: Path) -> None:
    imports = Imports.read(_package(tmp_path, {
        "operate/workers.py": "def f():\n    from .dask_workers import Pool\n",
        "operate/dask_workers.py": "from .workers import f\nclass Pool: ...\n",
        "ingest/fetch.py": "from ..operate import workers\n",
        "operate/pipeline.py": "from ..ingest.fetch import x\n"}))
    assert imports.module_loops() == [["aggregator.operate.dask_workers",
                                       "aggregator.operate.workers"]]
    assert imports.package_cycles() == [["ingest", "operate"]]
    assert imports.upward() == [("aggregator.ingest.fetch", "aggregator.operate.workers")]
