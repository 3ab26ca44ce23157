"""The import graph of `anchorprep`: no cycles, and no import from a lower layer to a higher one.

Every module's imports of `anchorprep.*` are read from its source with `ast` (imports inside
functions count: a lazy import is still a dependency). Layers, lowest first:

    errors < sources < grid < anchors < shards < pipeline < data < metrics < inspect < interop < cli

(`synthetic`, the sample-corpus writer, imports nothing from anchorprep and sits with `errors`;
`storage`, the URL and object-storage layer, imports only `errors`.)
A module may import its own layer and the layers below; the package root (`__version__`) is
importable from anywhere. `anchorprep.loss` stands apart: it imports nothing from
anchorprep but `anchorprep.errors` and itself (torch only), and anything may import it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "anchorprep"

LAYERS = (
    ("errors", "storage", "synthetic", "version"),
    ("sources",),
    ("grid",),
    ("anchors",),
    ("shards",),
    ("pipeline",),
    ("data",),
    ("metrics",),
    ("inspect",),
    ("interop",),
    ("cli", "__main__"),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
LOSS_MAY_IMPORT = ("anchorprep.errors", "anchorprep.loss")

def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """The anchorprep modules `path` imports (``from pkg import mod`` resolves to the module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "anchorprep")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.split(".")[0] != "anchorprep":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    return {m for m in found if m != name}


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(path, name, known) for name, path in found.items()}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_graph_is_read() -> None:
    edges = graph()
    assert "anchorprep.sources.alignments.model" in edges["anchorprep.sources.alignments.ctm"]
    assert "anchorprep.sources.alignments.formats" in edges["anchorprep.pipeline.align"]
    assert "anchorprep.sources.alignments" not in edges["anchorprep.pipeline.align"]  # `from pkg import mod` is mod
    # a lazy import inside a function counts
    assert "anchorprep.sources.alignments.ctm" in edges["anchorprep.sources.alignments.formats"]


def test_no_import_cycle() -> None:
    edges = graph()
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def layer_violations(edges: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, targets in edges.items():
        source = layer(module)
        for target in targets:
            goal = layer(target)
            if source == "loss":
                if not target.startswith(LOSS_MAY_IMPORT):
                    wrong.append(f"{module} -> {target} (loss imports only torch and anchorprep.errors)")
                continue
            if goal in ("loss", "__init__") or source == "__init__":
                continue  # anyone may use the loss; the package root is the public face
            if goal not in RANK or source not in RANK:
                wrong.append(f"{module} -> {target}: layer {source if source not in RANK else goal} has no rank")
            elif RANK[goal] > RANK[source]:
                wrong.append(f"{module} ({source}) -> {target} ({goal}): a lower layer imports a higher one")
    return sorted(wrong)


def test_layer_violations_are_found() -> None:
    assert layer_violations({"anchorprep.sources.alignments.rttm": {"anchorprep.pipeline.inputs"}}) == [
        "anchorprep.sources.alignments.rttm (sources) -> anchorprep.pipeline.inputs (pipeline): "
        "a lower layer imports a higher one"]
    assert layer_violations({"anchorprep.loss.functional": {"anchorprep.grid"}})
    assert not layer_violations({"anchorprep.data.dataset": {"anchorprep.loss", "anchorprep.sources.audio"}})


def test_layers_only_import_downwards() -> None:
    wrong = layer_violations(graph())
    assert not wrong, "\n".join(wrong)
