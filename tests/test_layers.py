"""No module imports from a layer above its own (DESIGN.md's data flow):

    base -> envs -> data -> saliency -> models -> pretrain -> algos -> evaluation
         -> experiments -> commands -> cli

``base`` is what every layer may use: errors, devices, allocator, precision, checkpoint, runs,
run_log, and data.atomic (atomic file writes). Every ``saliency_rl`` import counts, those inside functions too: a lazy import is
still a dependency.
"""

import ast
from pathlib import Path

import pytest

import saliency_rl

PACKAGE = Path(saliency_rl.__file__).parent
LAYERS = (
    "base", "envs", "data", "saliency", "models", "pretrain", "algos", "evaluation",
    "experiments", "commands", "cli",
)  # fmt: skip
BASE = {"__init__", "errors", "devices", "allocator", "precision", "checkpoint", "runs", "run_log"}


def layer_of(module: str) -> str:
    """``saliency_rl.algos.sac`` -> ``algos``; the base modules -> ``base``."""
    if module == "saliency_rl.data.atomic":
        return "base"
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    return "base" if top in BASE else top


def modules() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        found.append(".".join(relative.parts).removesuffix(".__init__"))
    return found


def imports_of(module: str) -> set[str]:
    """The saliency_rl modules ``module`` imports, at the top or inside functions."""
    path = PACKAGE.parent.joinpath(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("saliency_rl"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from .x import y
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.startswith("saliency_rl"):
                found.add(name)
    return found


def test_every_module_is_in_a_layer():
    unknown = {layer_of(m) for m in modules()} - set(LAYERS)
    assert not unknown, f"modules outside the layer order: {sorted(unknown)}"


@pytest.mark.parametrize("module", modules())
def test_no_import_from_a_higher_layer(module):
    rank = LAYERS.index(layer_of(module))
    upward = sorted(
        f"{name} ({layer_of(name)})"
        for name in imports_of(module)
        if name != "saliency_rl" and LAYERS.index(layer_of(name)) > rank
    )
    assert not upward, f"{module} ({layer_of(module)}) imports from higher layers: {upward}"
