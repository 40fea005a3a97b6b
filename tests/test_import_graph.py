"""No import circles: none between packages, none between the modules of one package.

The graph is read statically with :mod:`ast` from every ``.py`` under ``src/fakescope``: every
``import`` and ``from ... import`` naming a fakescope module, at module level, inside functions
(lazy imports are still a dependency, and a lazy import is the usual way a circle is hidden)
and under ``if TYPE_CHECKING:``. Relative imports are resolved; ``from package import name``
is an edge to the submodule ``package.name`` when there is one, else to ``package`` (its
``__init__``). The parent packages that Python runs before a submodule are not edges of their
own: a package's ``__init__`` importing its submodules, which import each other, is the normal
layout, not a circle.

TYPE_CHECKING-only imports are kept apart and checked in a second pass: the runtime graph
(module level and function level) must have no circle, and neither may the graph with the
TYPE_CHECKING imports added. They are not exempt because such an import still means the two
modules need each other's definitions (mypy follows it; a real circle hid behind one between
``batch/_ray.py`` and ``batch/_runner.py``); the guard only moves the circle out of sight.

Nodes of the package graph: each subpackage (``fakescope.faces`` with all its modules), each
module directly in ``fakescope/`` (``fakescope.config``, ``fakescope._assets``, ...) on its
own, and ``fakescope`` itself, which is ``fakescope/__init__.py``. The top package's re-exports
are edges like any other (``fakescope`` -> ``fakescope.inference`` etc.); they are not skipped,
and nothing under ``fakescope`` imports ``fakescope`` in a way that closes a circle.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "fakescope"

# Packages whose modules may still import each other in a circle, each with its reason
# ({"fakescope.cli": "being split into cli/_common.py"} until that split landed). An entry
# must still be needed: when its circle is gone the test says to remove it.
ALLOWED_MODULE_CYCLES: dict[str, str] = {}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    where: str  # path:line of the import
    kind: str  # "module", "function" or "typing" (under if TYPE_CHECKING)


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / ROOT).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(name: str) -> str:
    """The module ``name`` is, or the closest package above it (an imported attribute)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _targets(node: ast.AST, package: str) -> list[str]:
    """The dotted names an import statement imports (``from a.b import c`` -> ``a.b.c``),
    relative imports resolved against ``package``; [] for any other node."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        return [f"{source}.{a.name}" for a in node.names]
    return []


def _parse(module: str, path: Path) -> tuple[ast.Module, str]:
    """The syntax tree of ``path`` and the package its relative imports start from."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return tree, module if path.name == "__init__.py" else module.rpartition(".")[0]


def _imports(module: str, path: Path) -> Iterator[Edge]:
    tree, package = _parse(module, path)
    where = str(path.relative_to(SRC))

    def walk(node: ast.AST, kind: str) -> Iterator[Edge]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    yield from visit(stmt, "typing")
                for stmt in child.orelse:
                    yield from visit(stmt, kind)
            else:
                yield from visit(child, kind)

    def visit(node: ast.AST, kind: str) -> Iterator[Edge]:
        line = f"{where}:{getattr(node, 'lineno', '?')}"
        for target in _targets(node, package):
            if target == ROOT or target.startswith(ROOT + "."):
                resolved = _resolve(target)
                assert resolved, f"{line}: cannot resolve {target}"
                if resolved != module:
                    yield Edge(module, resolved, line, kind)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and kind == "module":
            kind = "function"
        yield from walk(node, kind)

    yield from walk(tree, "module")


EDGES = list(dict.fromkeys(e for module, path in MODULES.items() for e in _imports(module, path)))


def _package(module: str) -> str:
    """The package-graph node of ``module``: its subpackage of fakescope, else itself."""
    return ".".join(module.split(".")[:2])


def _graph(
    edges: Iterable[Edge], node: Callable[[str], str] = str
) -> dict[str, dict[str, list[Edge]]]:
    """``graph[a][b]``: the imports that make ``a`` depend on ``b``, nodes named by ``node``."""
    graph: dict[str, dict[str, list[Edge]]] = defaultdict(lambda: defaultdict(list))
    for edge in edges:
        graph[node(edge.source)][node(edge.target)].append(edge)
    return graph


def _cycles(graph: dict[str, dict[str, list[Edge]]]) -> list[list[str]]:
    """One shortest circle through each strongly connected component of two or more nodes."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(node: str) -> None:  # Tarjan; the graph is small enough to recurse
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, {})):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.add(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(component)

    nodes = set(graph) | {t for targets in graph.values() for t in targets}
    for node in sorted(nodes):
        if node not in index:
            connect(node)
    cycles = []
    for component in components:
        start = min(component)
        paths = {start: [start]}
        queue = [start]
        while queue:  # breadth first inside the component, back to start
            node = queue.pop(0)
            for nxt in sorted(graph[node]):
                if nxt == start:
                    queue = []
                    cycles.append(paths[node] + [start])
                    break
                if nxt in component and nxt not in paths:
                    paths[nxt] = paths[node] + [nxt]
                    queue.append(nxt)
    return cycles


def _describe(cycle: list[str], graph: dict[str, dict[str, list[Edge]]]) -> str:
    lines = [" -> ".join(cycle)]
    for a, b in pairwise(cycle):
        imports = ", ".join(
            f"{e.where} imports {e.target}" + ("" if e.kind == "module" else f" ({e.kind})")
            for e in graph[a][b][:4]
        )
        lines.append(f"  {a} -> {b}: {imports}")
    return "\n".join(lines)


def _edges(with_typing: bool) -> list[Edge]:
    return [e for e in EDGES if with_typing or e.kind != "typing"]


PASSES = pytest.mark.parametrize("with_typing", [False, True], ids=["runtime", "with-typing"])


def test_the_graph_is_read() -> None:
    """The reader finds the imports (a broken reader would pass every other test)."""
    assert len(MODULES) > 100
    pairs = {(e.source, e.target) for e in EDGES}
    assert ("fakescope.faces", "fakescope.faces._detect") in pairs
    assert ("fakescope.inference._pipeline", "fakescope.faces") in pairs
    kinds = {e.kind for e in EDGES}
    assert kinds == {"module", "function", "typing"}


@PASSES
def test_no_circle_between_packages(with_typing: bool) -> None:
    edges = [e for e in _edges(with_typing) if _package(e.source) != _package(e.target)]
    graph = _graph(edges, _package)
    cycles = _cycles(graph)
    assert not cycles, "import circle between packages:\n" + "\n".join(
        _describe(c, graph) for c in cycles
    )


@PASSES
def test_no_circle_inside_a_package(with_typing: bool) -> None:
    inside = [e for e in _edges(with_typing) if _package(e.source) == _package(e.target)]
    found, allowed = [], set()
    for package in sorted({_package(e.source) for e in inside}):
        graph = _graph(e for e in inside if _package(e.source) == package)
        cycles = _cycles(graph)
        if package in ALLOWED_MODULE_CYCLES:
            if cycles:
                allowed.add(package)
        else:
            found += [_describe(c, graph) for c in cycles]
    assert not found, "import circle inside a package:\n" + "\n".join(found)
    stale = sorted(set(ALLOWED_MODULE_CYCLES) - allowed)
    assert not stale, f"no circle left in {stale}: remove them from ALLOWED_MODULE_CYCLES"


# Imports of another package's private modules or names, each with its reason, keyed
# "importing.module -> imported.name" ({"fakescope.cli._serve -> fakescope.server._http": "..."}).
# An entry must still be needed: when its import is gone the test says to remove it.
ALLOWED_PRIVATE_IMPORTS: dict[str, str] = {}


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _private_violation(source: str, target: str) -> str | None:
    """Why module ``source`` may not import the dotted name ``target``, or None when it may.

    A private module or subpackage (``fakescope.io._sniff``) belongs to the package holding it:
    only that package's own modules import it (the top package's ``fakescope._assets`` is
    everybody's). A private name (``fakescope.decision._validate_costs``) belongs to its
    module's node of the package graph: modules of the same subpackage may share it, no other.
    Anything else goes through the owner's public names (its ``__init__`` for a package).
    """
    parts = target.split(".")
    for i in range(1, len(parts)):
        if not _private(parts[i]):
            continue
        owner, name = ".".join(parts[:i]), ".".join(parts[: i + 1])
        if name in MODULES:
            if source != owner and not source.startswith(owner + "."):
                return f"private module {name} of {owner}"
        elif _package(source) != _package(owner):
            return f"private name {parts[i]} of {owner}"
    return None


def _private_imports() -> dict[str, str]:
    """``"source -> target"``: ``path:line, why`` for every import the rule forbids, at module
    level, in functions and under ``if TYPE_CHECKING:`` alike."""
    found = {}
    for module, path in MODULES.items():
        tree, package = _parse(module, path)
        for node in ast.walk(tree):
            for target in _targets(node, package):
                if target.split(".")[0] != ROOT:
                    continue
                why = _private_violation(module, target)
                if why:
                    where = f"{path.relative_to(SRC)}:{getattr(node, 'lineno', '?')}"
                    found.setdefault(f"{module} -> {target}", f"{where}: {why}")
    return found


@pytest.mark.parametrize(
    ("source", "target", "allowed"),
    [
        ("fakescope.server._uploads", "fakescope.io._sniff.sniff_bytes", False),
        ("fakescope.server._uploads", "fakescope.io.sniff_bytes", True),
        ("fakescope.io._media", "fakescope.io._sniff.sniff_bytes", True),
        ("fakescope.io", "fakescope.io._sniff", True),
        ("fakescope.__main__", "fakescope.cli._main", False),
        ("fakescope.models._base", "fakescope._assets.shipped", True),
        ("fakescope.models._base", "fakescope._assets._digest", False),
        ("fakescope.fusion", "fakescope.calibration._logit", False),
        ("fakescope.evaluation._metrics", "fakescope.decision._validate_costs", False),
        ("fakescope.faces._blazeface", "fakescope.faces._mtcnn._nms", True),
        ("fakescope.server._app", "fakescope.__version__", True),
    ],
)
def test_the_private_rule(source: str, target: str, allowed: bool) -> None:
    assert (_private_violation(source, target) is None) is allowed


def test_no_private_import_across_packages() -> None:
    """Another package's names are imported through its public API (``__init__``), never from
    its private modules; a module's private names stay in its own package."""
    found = _private_imports()
    unexpected = {k: v for k, v in found.items() if k not in ALLOWED_PRIVATE_IMPORTS}
    assert not unexpected, "imports of another package's private parts:\n" + "\n".join(
        f"  {k}  ({v})" for k, v in sorted(unexpected.items())
    )
    stale = sorted(set(ALLOWED_PRIVATE_IMPORTS) - set(found))
    assert not stale, f"no longer imported: remove {stale} from ALLOWED_PRIVATE_IMPORTS"


MAX_MODULE_LINES = 600


def test_modules_stay_small() -> None:
    """Small rooms: every module of the package under 600 lines (issue 31)."""
    modules = _modules()
    assert len(modules) > 100
    long = {
        name: n
        for name, path in modules.items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"
