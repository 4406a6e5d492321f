"""The shape of the code: no import cycles between the modules of app/ (imports inside functions count too:
a loop hidden in a function body is still a loop a reader has to untangle)."""

import ast
import graphlib
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"


def module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Each module of app/ and the modules of app/ it imports."""
    modules = {module_name(path): path for path in APP.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from app.x import y` may import the module app.x.y or the name y of app.x
                targets = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
            else:
                continue
            for target in targets:
                if target in modules and target != name:
                    graph[name].add(target)
                    break
    return graph


def test_the_import_graph_has_edges():
    # Guards the test below against passing vacuously on a graph that failed to build.
    graph = import_graph()
    assert "app.config" in graph["app.main"]
    assert sum(map(len, graph.values())) > 50


def test_no_import_cycles_in_app():
    try:
        graphlib.TopologicalSorter(import_graph()).prepare()
    except graphlib.CycleError as error:
        raise AssertionError("import cycle: " + " -> ".join(error.args[1])) from None
