"""The code's own checks, as CI runs them: ruff (lint and format), the layering contract in
pyproject.toml (import-linter), mypy, and the import rules of CONTRIBUTING.md: bench/ uses
nothing from tests/, and an import sits inside a function only when it keeps a heavy
package (torch, transformers, gradio, flwr and their like) off the start-up path."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
BIN = Path(sys.executable).parent

# Third-party packages light enough to import at the top of any module; every other one is
# "heavy" and may be imported inside a function to keep it off `tllm --help` and `tllm ask`.
LIGHT = {"click", "yaml", "orjson", "tomli_w", "jinja2", "markupsafe"}


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    "argv",
    [
        ("ruff", "check", "src", "tests", "bench"),
        ("ruff", "format", "--check", "src", "tests", "bench"),
        ("lint-imports",),
        ("mypy",),
    ],
    ids=["ruff-check", "ruff-format", "layers", "types"],
)
def test_tool_passes(argv):
    result = run(str(BIN / argv[0]), *argv[1:])
    assert result.returncode == 0, result.stdout + result.stderr


def test_bench_uses_nothing_from_tests():
    users = [
        f"{path.name}:{node.lineno}"
        for path in (ROOT / "bench").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom | ast.Import)
        and any(name.split(".")[0] == "tests" for name in imported_names(node))
    ]
    assert not users, f"bench/ imports from tests/: {users}"


def imported_names(node) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    return [node.module or ""] if not node.level else []


class Modules:
    """The package's modules, what each imports at its top level, and which heavy packages
    importing it loads (through those top-level imports, transitively)."""

    def __init__(self):
        self.paths = {self.name(path): path for path in (SRC / "together_llm").rglob("*.py")}
        self.trees = {name: ast.parse(path.read_text()) for name, path in self.paths.items()}
        self.top = {name: self.top_imports(name) for name in self.paths}
        self._heavy: dict[str, frozenset] = {}

    @staticmethod
    def name(path: Path) -> str:
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    def targets(self, module: str, node) -> list[str]:
        """The modules an import statement of `module` loads."""
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        if node.level:
            package = (
                module if self.paths[module].name == "__init__.py" else module.rpartition(".")[0]
            )
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            node_module = ".".join(base + ([node.module] if node.module else []))
        else:
            node_module = node.module
        subs = [f"{node_module}.{alias.name}" for alias in node.names]
        return [node_module] + [sub for sub in subs if sub in self.paths]

    def top_imports(self, module: str) -> set[str]:
        found: set[str] = set()

        def visit(body):
            for node in body:
                if isinstance(node, ast.Import | ast.ImportFrom):
                    found.update(self.targets(module, node))
                elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
                    visit(node.body + node.orelse)
                elif isinstance(node, ast.Try):
                    visit(node.body + node.orelse + node.finalbody)
                    for handler in node.handlers:
                        visit(handler.body)

        visit(self.trees[module].body)
        return found

    def heavy(self, module: str, seen: frozenset = frozenset()) -> frozenset:
        """The heavy packages that importing `module` loads."""
        if module in self._heavy:
            return self._heavy[module]
        if module not in self.paths:
            root = module.split(".")[0]
            light = root in sys.stdlib_module_names or root in LIGHT or root == "__future__"
            return frozenset() if light or root == "together_llm" else frozenset({root})
        parents = {module.rsplit(".", i)[0] for i in range(1, module.count("."))}
        found = frozenset().union(
            *(
                self.heavy(dep, seen | {module})
                for dep in self.top[module] | parents
                if dep not in seen | {module}
            )
        )
        if not seen:
            self._heavy[module] = found
        return found


def test_imports_inside_functions_only_keep_heavy_packages_off_the_start_up_path():
    """An import inside a function must load a heavy package that its module does not
    already load at the top; any other import belongs at the top of the file."""
    modules = Modules()
    misplaced = []
    for module, tree in modules.trees.items():
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    adds = set().union(*(modules.heavy(t) for t in modules.targets(module, node)))
                    if not adds - modules.heavy(module):
                        misplaced.append(f"{module}:{node.lineno} {ast.unparse(node)}")
    assert not misplaced, "move to the top of the file:\n" + "\n".join(sorted(set(misplaced)))
