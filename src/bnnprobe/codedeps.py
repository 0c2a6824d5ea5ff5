"""Which ``bnnprobe`` files a workflow script runs: its imports, followed inside the package.

Snakemake does not track imports, so every rule lists the library files its script runs
as inputs; this module derives that list from the code itself (torch-free: the Snakefile
imports it), so the list cannot drift. Every ``import`` statement counts, at module level
or inside a function, and importing ``a.b.c`` runs ``a/__init__.py`` and
``a/b/__init__.py`` too. Modules named in ``dynamic`` (imported by name from a config
value) are added as entries; modules in ``exclude`` are not followed (the estimator
families, which a rule adds per estimator).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

PACKAGE = "bnnprobe"
PACKAGE_DIR = Path(__file__).resolve().parent


def module_file(module: str) -> Path | None:
    """``bnnprobe.x.y`` -> its file (``x/y.py`` or ``x/y/__init__.py``), or None if it is no module."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path) -> str:
    rel = path.resolve().relative_to(PACKAGE_DIR.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@lru_cache(maxsize=None)
def imported_modules(path: Path) -> frozenset[str]:
    """The ``bnnprobe`` modules the file at ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    inside = path.resolve().is_relative_to(PACKAGE_DIR)
    if inside:
        name = _module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if not inside:
                    continue
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != PACKAGE:
                continue
            found.add(module)
            for alias in node.names:  # "from pkg import sub" imports a submodule where one exists
                if module_file(f"{module}.{alias.name}") is not None:
                    found.add(f"{module}.{alias.name}")
    return frozenset(found)


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def code_files(script: str | Path, dynamic: Iterable[str] = (), exclude: Iterable[str] = ()) -> list[Path]:
    """The ``bnnprobe`` files that ``script`` runs, sorted (see the module docstring)."""
    excluded = {module_file(m) for m in exclude}
    seen: set[Path] = set()
    queue = [Path(script)] + [f for m in dynamic for f in map(module_file, _with_parents(m)) if f]
    files: set[Path] = set()
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        if path.resolve().is_relative_to(PACKAGE_DIR):
            files.add(path.resolve())
        for module in imported_modules(path):
            for name in _with_parents(module):
                found = module_file(name)
                if found is not None and found not in excluded and found not in seen:
                    queue.append(found)
    return sorted(files)
