"""The import graph points one way: scripts -> bot -> model, and inside model
serving <- data <- training <- evaluation. Read with ``ast``, so imports inside functions count."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Inside model/, a layer may import its own layer and the ones before it. Serving (model/*.py
# at the top) is what a photo passes through, so it must stand without the rest.
MODEL_LAYERS = ("model", "model.data", "model.training", "model.evaluation")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute names, at any depth of the file."""
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" \
        else module_name(path)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (REPO / folder).rglob("*.py"))


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def model_layer(module: str) -> int:
    return max(i for i, layer in enumerate(MODEL_LAYERS) if within(module, layer))


def violations(files: list[Path], forbidden) -> list[str]:
    return [f"{module_name(path)} imports {name}" for path in files
            for name in sorted(imported_modules(path)) if forbidden(module_name(path), name)]


def test_the_import_reader_sees_imports_inside_functions() -> None:
    source = REPO / "model" / "data" / "flickr.py"
    assert "model.answers" in imported_modules(source)  # imported inside a function there


def test_model_never_imports_the_bot_or_the_scripts() -> None:
    assert violations(sources("model"), lambda _, name: within(name, "bot")
                      or within(name, "scripts")) == []


def test_the_bot_never_imports_the_scripts_or_training() -> None:
    assert violations(sources("bot"), lambda _, name: within(name, "scripts")
                      or within(name, "model.training") or within(name, "model.evaluation")) == []


def test_model_layers_import_only_themselves_and_the_layers_before() -> None:
    def upward(importer: str, name: str) -> bool:
        return within(name, "model") and model_layer(name) > model_layer(importer)

    assert violations(sources("model"), upward) == []


@pytest.mark.parametrize("layer", MODEL_LAYERS[1:])
def test_each_layer_is_a_package(layer: str) -> None:
    assert (REPO / layer.replace(".", "/") / "__init__.py").is_file()
