"""The layer contracts of ARCHITECTURE.md hold, and they do fail on an import that points up."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
MAX_LINES = 400


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def tree(tmp_path):
    shutil.copytree(ROOT / "shop", tmp_path / "shop", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def add_import(tree: Path, module: str, statement: str) -> None:
    path = tree / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text() + f"\n{statement}  # the violation under test\n")


def test_the_contracts_are_kept(tree):
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "statement", "broken"),
    [
        # the catalog reaching up into orders
        ("shop.products.catalog", "import shop.orders.models", "Domains are layered"),
        # even hidden in a function: import-linter reads every import statement
        ("shop.auth.accounts", "def f():\n    import shop.reports.services", "Domains are layered"),
        # a platform module naming a domain
        ("shop.db", "import shop.audit.models", "Platform modules import no domain"),
        # two modules of one domain importing each other
        ("shop.orders.queries", "import shop.orders.status", "No import cycles"),
    ],
)
def test_an_import_that_points_up_breaks_make_lint(tree, module, statement, broken):
    add_import(tree, module, statement)
    result = lint_imports(tree)
    assert result.returncode != 0
    assert re.search(rf"{broken}.* BROKEN", result.stdout), result.stdout


def test_modules_are_short_or_say_why():
    long = []
    for path in sorted((ROOT / "shop").rglob("*.py")):
        text = path.read_text()
        if text.count("\n") > MAX_LINES and "Long because" not in text.split('"""')[1]:
            long.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
    assert long == []
