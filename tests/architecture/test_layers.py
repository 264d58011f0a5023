"""The package's import rules (ARCHITECTURE.md), checked on the source itself.

- the layer contracts of ``[tool.importlinter]`` in pyproject.toml (no upward imports, no cycles between
  layers, nutpie only in ``inference``, pure ``decisions``), run with import-linter;
- no ``_private`` name crosses a module boundary, in the package, the tests or the benchmarks;
- no module but ``inference`` starts the sampler (``pm.sample``).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# one worker runs this module: a test plants a file in tests/ that another test's scan would see
pytestmark = pytest.mark.xdist_group("architecture")

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "bayes_stenosis"
SOURCES = [*PACKAGE.rglob("*.py"), *(ROOT / "tests").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]


def _python_files_importing_privates(files: list[Path]) -> list[str]:
    """``from bayes_stenosis.x import _y`` and ``module._y`` on an imported package module."""
    found = []
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        module_aliases: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bayes_stenosis"):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}: imports {node.module}.{alias.name}")
                    elif alias.name[:1].islower():  # a submodule or a function; attribute use checked below
                        module_aliases.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("bayes_stenosis"):
                        module_aliases.add(alias.asname or alias.name.split(".")[0])
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in module_aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: uses {node.value.id}.{node.attr}")
    return found


def test_layer_contracts_hold():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    result = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "BROKEN" not in result.stdout and "KEPT" in result.stdout


def test_no_private_names_cross_a_module_boundary():
    assert _python_files_importing_privates(SOURCES) == []


def test_the_private_import_check_catches_both_forms():
    # the check reports paths relative to the repository, so the planted file sits inside it
    planted = ROOT / "tests" / "architecture" / "_planted_private_imports.py"
    planted.write_text(
        "from bayes_stenosis.decisions import _hidden\nfrom bayes_stenosis import decisions\ndecisions._other\n"
    )
    try:
        found = _python_files_importing_privates([planted])
    finally:
        planted.unlink()
    assert [line.split(": ", 1)[1] for line in found] == [
        "imports bayes_stenosis.decisions._hidden",
        "uses decisions._other",
    ]


@pytest.mark.parametrize("call", ["sample"])
def test_only_inference_starts_the_sampler(call):
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "inference":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == call
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in {"pm", "pymc", "nutpie"}
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_no_package_source_is_git_ignored():
    # an ignored __init__.py is invisible on a fresh clone (CI broke once on `outputs/` in .gitignore)
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    sources = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*") if p.suffix in {".py", ".toml", ".csv", ".md"}]
    result = subprocess.run(
        [git, "check-ignore", "--no-index", "--stdin"],
        cwd=ROOT,
        input="\n".join(sources),
        capture_output=True,
        text=True,
    )
    assert result.stdout.split() == []
