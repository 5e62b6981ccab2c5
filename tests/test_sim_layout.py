"""The simulator's modules import each other in one direction only, at
module level: no import cycle, none hidden inside a function."""

import ast
from pathlib import Path

import pytest

SIM = Path(__file__).resolve().parents[1] / "flux_journal" / "sim"
PACKAGE = "flux_journal.sim"


def sim_imports(path):
    """(module-level imports, imports inside functions) of sibling sim
    modules in the file at *path*."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top, nested = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
            if node.module == PACKAGE:
                names = [f"{PACKAGE}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        siblings = {n.rsplit(".", 1)[1] for n in names if n.startswith(PACKAGE + ".")}
        (top if node in tree.body else nested).update(siblings)
    return top, nested


MODULES = {path.stem: sim_imports(path) for path in SIM.glob("*.py") if path.stem != "__init__"}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_function_level_imports(module):
    assert MODULES[module][1] == set()


def test_no_import_cycle():
    # function-level imports count: they only hide a cycle
    graph = {module: (top | nested) & MODULES.keys() for module, (top, nested) in MODULES.items()}
    done, path = set(), []

    def visit(module):
        assert module not in path, " -> ".join(path + [module])
        if module in done:
            return
        path.append(module)
        for imported in sorted(graph[module]):
            visit(imported)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
