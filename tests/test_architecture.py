"""The shape of DESIGN.md §2, checked over the source: layers point down, no import
cycle (at run time or under TYPE_CHECKING), every feature module belongs to a
declared feature, and templates and the code that renders them agree."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.commands import declared_features

REPO = Path(__file__).resolve().parent.parent
FEATURE_LAYERS = ("bot/commands", "bot/jobs", "bot/services", "bot/domain", "storage")
# Storage that belongs to the core, not to one feature.
CORE_STORAGE = {
    "db",
    "dialect",
    "types",
    "models",
    "claims",
    "processed_events",
    "members",
    "outbox",
    "schema",
    "slack_installations",
}
SDKS = ("slack_bolt", "slack_sdk", "discord")
# What pure rules may not touch: I/O, databases, schedulers, platforms.
IMPURE = (*SDKS, "sqlalchemy", "sqlmodel", "aiohttp", "apscheduler", "storage", "asyncio")


def module_name(path: Path, root: Path = REPO) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path = REPO) -> dict[str, Path]:
    paths = [*(root / "bot").rglob("*.py"), *(root / "storage").rglob("*.py")]
    return {module_name(path, root): path for path in paths if "migrations" not in path.parts}


def imported_names(path: Path, name: str) -> Iterator[str]:
    """Every module name an import statement in `path` mentions (and, for `from x
    import y`, `x.y`, which is a module when y is one), wherever the statement is:
    module level, inside a function, or under `if TYPE_CHECKING`."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def import_graph(root: Path = REPO) -> dict[str, set[str]]:
    modules = project_modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in imported_names(path, name):
            module = imported
            while module and module not in modules:
                module = module.rpartition(".")[0]
            if module and module != name:
                targets.add(module)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def all_imports(path: Path, name: str) -> set[str]:
    return set(imported_names(path, name))


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_check_sees_type_checking_imports(tmp_path: Path) -> None:
    """A cycle closed only under `if TYPE_CHECKING` counts too."""
    (tmp_path / "bot").mkdir()
    (tmp_path / "storage").mkdir()
    (tmp_path / "bot" / "a.py").write_text("import bot.b\n")
    (tmp_path / "bot" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot import a\n"
    )
    assert cycles(import_graph(tmp_path)) == [["bot.a", "bot.b"]]


@pytest.mark.parametrize("layer", FEATURE_LAYERS)
def test_features_never_import_the_core_object_adapters_or_sdks(layer: str) -> None:
    forbidden = ("bot.core.app", "bot.core.cli", "bot.adapters", *SDKS)
    for path in (REPO / layer).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        name = module_name(path)
        bad = sorted(
            imported
            for imported in all_imports(path, name)
            if imported.startswith(forbidden) and not imported.startswith("bot.core.app_")
        )
        assert not bad, f"{name} imports {bad} (features get a Runtime through Context)"


def test_layers_point_down() -> None:
    above = {
        "bot.domain": ("bot.services", "bot.jobs", "bot.commands", *IMPURE),
        "bot.services": ("bot.jobs", "bot.commands"),
        "bot.jobs": ("bot.commands",),
        "storage": ("bot.services", "bot.jobs", "bot.commands", "bot.core"),
    }
    for name, path in project_modules().items():
        for layer, forbidden in above.items():
            if name == layer or name.startswith(f"{layer}."):
                bad = sorted(
                    imported
                    for imported in all_imports(path, name)
                    if any(imported == f or imported.startswith(f"{f}.") for f in forbidden)
                )
                assert not bad, f"{name} ({layer}) imports {bad}"


def owner(stem: str, features: set[str]) -> str | None:
    """The feature a module belongs to: named after it, or `<feature>_<part>`."""
    for feature in features:
        if stem == feature or stem.startswith(f"{feature}_"):
            return feature
    return None


def test_every_feature_module_belongs_to_a_declared_feature() -> None:
    features = {feature.name for feature in declared_features()}
    for layer in FEATURE_LAYERS:
        for path in (REPO / layer).glob("*.py"):
            if path.stem == "__init__" or (layer == "storage" and path.stem in CORE_STORAGE):
                continue
            assert owner(path.stem, features), f"{layer}/{path.name} belongs to no declared feature"
    packages = [p for p in (REPO / "bot" / "domain").iterdir() if (p / "__init__.py").exists()]
    assert [p.name for p in packages] == ["matching"], "the engine is the only domain package"


def test_declared_tables_are_the_features_own_storage_modules() -> None:
    for feature in declared_features():
        if feature.tables is not None:
            assert feature.tables.__name__ == f"storage.{feature.name}", feature.name


RENDERED = re.compile(r"""["']([a-z_]+/[a-z_]+)["']""")


def rendered_templates() -> set[str]:
    names: set[str] = set()
    for path in (REPO / "bot").rglob("*.py"):
        names.update(RENDERED.findall(path.read_text(encoding="utf-8")))
    return names


def template_files() -> set[str]:
    directory = REPO / "config" / "templates"
    return {
        path.relative_to(directory).with_suffix("").as_posix() for path in directory.rglob("*.j2")
    }


def test_every_rendered_template_exists_and_every_template_is_rendered() -> None:
    files = template_files()
    features = {feature.name for feature in declared_features()}
    referenced = {name for name in rendered_templates() if name.split("/")[0] in features}
    assert referenced - files == set(), "rendered but missing"
    assert files - referenced == set(), "templates no code renders"
    for name in files:
        assert name.split("/")[0] in features, f"config/templates/{name}.j2 is no feature's"
