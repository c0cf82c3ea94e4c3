"""The package's floors (DESIGN.md): every module imports, the module-level import graph has no
cycle, Eq. 4 is a numpy/scipy leaf below the losses, and the calibration sits above them."""

import ast
import importlib
import pathlib

import pytest

import keras_robust

PACKAGE = pathlib.Path(keras_robust.__file__).parent

# Modules whose imports all sit at the top of the file (issue 12). Others keep a few
# lazy imports for start-up time or optional extras (cli, experiments, plots, datasets, ...).
TOP_IMPORTS_ONLY = (
    "keras_robust",
    "keras_robust._checks",
    "keras_robust.diagnostics",
    "keras_robust.diagnostics.callback",
    "keras_robust.diagnostics.report",
    "keras_robust.datasets",
    "keras_robust.datasets.cache",
    "keras_robust.datasets.catalog",
    "keras_robust.datasets.loading",
    "keras_robust.datasets.sources",
    "keras_robust.epsilon",
    "keras_robust.noise",
    "keras_robust.schedules",
    "keras_robust.schedules.adaptive",
    "keras_robust.schedules.base",
    "keras_robust.schedules.callback",
    "keras_robust.tuner",
    "keras_robust.tuner.oracles",
    "keras_robust.tuner.ranges",
    "keras_robust.tuner.seeding",
    "keras_robust.tuner.space",
    "keras_robust.tuner.tuners",
    "keras_robust.calibration",
    "keras_robust.calibration.curves",
    "keras_robust.calibration.epsilon",
    "keras_robust.calibration.logits",
    "keras_robust.calibration.transfer",
    "keras_robust.losses",
    "keras_robust.losses._labels",
    "keras_robust.losses._names",
    "keras_robust.losses.active_passive",
    "keras_robust.losses.base",
    "keras_robust.losses.functional",
    "keras_robust.losses.losses",
    "keras_robust.losses.registry",
)


def _module_files():
    files = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = path
    return files


MODULES = _module_files()


def _is_package(name):
    return MODULES[name].name == "__init__.py"


def _imports(name, tree):
    """``(imported module, line, inside a function)`` for every import of ``keras_robust`` modules and others."""
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative import
                    anchor = name.split(".") if _is_package(name) else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - child.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in child.names:
                    sub = f"{base}.{alias.name}"
                    found.append((sub if sub in MODULES else base, child.lineno, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def _graph():
    graph = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        graph[name] = sorted({m for m, _, lazy in _imports(name, tree) if not lazy and m in MODULES and m != name})
    return graph


def _cycle(graph):
    """One import cycle as a list of modules, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_imports(name):
    importlib.import_module(name)


def test_module_level_import_graph_has_no_cycle():
    graph = _graph()
    assert len(graph) == len(MODULES) >= 20
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    assert _cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert _cycle({"a": ["b"], "b": [], "c": ["a", "b"]}) is None


def _reachable(graph, start):
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        for nxt in graph[node]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_floors_eq4_below_losses_below_calibration():
    graph = _graph()
    # Eq. 4 is a leaf: numpy, scipy, the standard library and the argument checks only.
    tree = ast.parse(MODULES["keras_robust.epsilon"].read_text())
    roots = {m.split(".")[0] for m, _, _ in _imports("keras_robust.epsilon", tree)}
    assert roots <= {"math", "numpy", "scipy", "keras_robust"}, roots
    assert graph["keras_robust.epsilon"] == ["keras_robust._checks"]
    assert graph["keras_robust._checks"] == []
    # The losses need only Eq. 4; the calibration (curves, transfers) uses the losses.
    for name in MODULES:
        if name.startswith("keras_robust.losses"):
            below = _reachable(graph, name)
            assert not any(m.startswith("keras_robust.calibration") for m in below), (name, sorted(below))
            assert "keras_robust.losses.registry" not in below or name in ("keras_robust.losses",), name
    assert "keras_robust.epsilon" in _reachable(graph, "keras_robust.losses.losses")
    assert "keras_robust.losses" in _reachable(graph, "keras_robust.calibration.curves")
    assert "keras_robust.calibration" in _reachable(graph, "keras_robust.tuner")


@pytest.mark.parametrize("name", TOP_IMPORTS_ONLY)
def test_imports_at_the_top_of_the_file(name):
    tree = ast.parse(MODULES[name].read_text())
    lazy = [(m, line) for m, line, in_function in _imports(name, tree) if in_function]
    assert lazy == [], f"{name} imports inside functions: {lazy}"


def test_calibration_re_exports_eq4():
    from keras_robust import calibration, epsilon
    from keras_robust.calibration import epsilon as old_address

    for attr in ("epsilon_for_classes", "mean_true_probability", "epsilon_monte_carlo", "LogitModel"):
        assert getattr(calibration, attr) is getattr(epsilon, attr)
    for attr in ("epsilon_for_classes", "mean_true_probability", "epsilon_monte_carlo", "check_num_classes"):
        assert hasattr(old_address, attr)
    assert keras_robust.epsilon_for_classes is epsilon.epsilon_for_classes
