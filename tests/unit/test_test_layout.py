"""The tests' own layout (docs/architecture.md): a test module never imports another test
module. What two tests share lives in ``tests/support/`` (one concept a module)
or in a ``conftest.py``; importing a test module instead runs its module-level code and
fixtures in the importer, and ties one test file's edits to another's.

Parsed with ``ast``, so every import counts — inside functions too, relative ones, and the
module names in ``pytest_plugins``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.support.paths import REPO
from tests.support.python_source import parse


def module_name(repo: Path, path: Path) -> str:
    return ".".join(path.relative_to(repo).with_suffix("").parts).removesuffix(".__init__")


def _is_module(repo: Path, name: str) -> bool:
    relative = Path(*name.split("."))
    return (repo / relative).with_suffix(".py").exists() or (repo / relative / "__init__.py").exists()


def _absolute(importer: str, is_package: bool, level: int, module: str | None) -> str:
    """The absolute name a (possibly relative) ``from`` import refers to."""
    if level == 0:
        return module or ""
    package = importer.split(".") if is_package else importer.split(".")[:-1]
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, *([module] if module else [])])


def imported_modules(repo: Path, path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every module the file imports."""
    importer = module_name(repo, path)
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(importer, path.name == "__init__.py", node.level, node.module)
            for alias in node.names:
                # ``from tests.x import y`` imports the module tests.x.y when there is one.
                submodule = f"{base}.{alias.name}"
                yield node.lineno, submodule if _is_module(repo, submodule) else base
        elif isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "pytest_plugins" for target in node.targets
        ):
            for value in ast.walk(node.value):
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    yield node.lineno, value.value


def allowed(module: str) -> bool:
    """Outside ``tests``, shared helpers in ``tests.support``, and conftest modules."""
    parts = module.split(".")
    return parts[0] != "tests" or parts[:2] == ["tests", "support"] or parts[-1] == "conftest"


def offences(repo: Path) -> list[str]:
    """Every import under ``repo``/tests of a test module (anything but the allowed)."""
    found = [
        f"{path.relative_to(repo)}:{line}: imports {module}"
        for path in sorted((repo / "tests").rglob("*.py"))
        for line, module in imported_modules(repo, path)
        if not allowed(module)
    ]
    return list(dict.fromkeys(found))  # ``from m import a, b`` is one offence


def test_no_test_module_imports_another() -> None:
    found = offences(REPO)
    assert not found, "move what is shared into tests/support/ (one concept a module):\n" + "\n".join(found)


def test_the_check_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The check itself, on a small tree of its own: each way of reaching another test
    module is caught and the allowed ones are not (a check that looks at nothing passes too)."""
    media = tmp_path / "tests" / "integration" / "media"
    for folder in (tmp_path / "tests", tmp_path / "tests" / "support", media.parent, media):
        folder.mkdir(exist_ok=True)
        (folder / "__init__.py").write_text("")
    for name in ("test_attachments_api", "test_attachments_s3", "test_link_previews"):
        (media / f"{name}.py").write_text("")
    (tmp_path / "tests" / "conftest.py").write_text("")
    (tmp_path / "tests" / "support" / "chat_helpers.py").write_text("")
    (media / "test_probe.py").write_text(
        "from tests.integration.media.test_attachments_api import x\n"
        "import tests.unit.test_config\n"
        "from tests.integration.media import test_attachments_s3\n"
        "def later():\n"
        "    from .test_link_previews import y\n"
        "from . import test_attachments_api\n"
        "pytest_plugins = ['tests.contract.test_bus']\n"
        "from tests.support.chat_helpers import send\n"
        "from tests.conftest import make_user\n"
        "from tests import conftest\n"
        "import parley.config\n"
    )
    found = sorted(line.split(": imports ")[1] for line in offences(tmp_path))
    assert found == [
        "tests.contract.test_bus",
        "tests.integration.media.test_attachments_api",  # line 1
        "tests.integration.media.test_attachments_api",  # line 6, relative
        "tests.integration.media.test_attachments_s3",
        "tests.integration.media.test_link_previews",
        "tests.unit.test_config",
    ]
