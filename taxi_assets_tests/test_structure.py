"""The layout's rules: the environment is read at load in one place, the packages import in
one direction, the product never imports the tools."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "taxi_assets"


def python_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_definitions_read_the_environment_only_in_defs_resources():
    readers = [
        str(p.relative_to(REPO))
        for p in python_files(PACKAGE / "defs")
        if re.search(r"os\.environ|os\.getenv|getenv\(", p.read_text()) and p.name != "resources.py"
    ]
    assert readers == [], "read settings through taxi_assets/defs/resources.py (load_settings, build_resources)"


def import_cycles(package: str = "taxi_assets") -> list[list[str]]:
    """Each module that imports itself through others (imports inside functions count,
    `if TYPE_CHECKING:` ones do not), with the shortest way round."""
    import grimp

    graph = grimp.build_graph(package, exclude_type_checking_imports=True)
    cycles = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back:
                cycles.append([module, *back])
    return cycles


def test_no_import_cycles_in_the_package():
    assert import_cycles() == []


def test_no_import_cycles_in_the_tools():
    assert import_cycles("taxi_tools") == []


def test_the_product_does_not_import_the_tools():
    # taxi_tools (mirror, demo, bench, data docs) is not in the image (deploy/Dockerfile).
    import grimp

    graph = grimp.build_graph("taxi_assets", "taxi_tools", exclude_type_checking_imports=True)
    assert not graph.chain_exists(importer="taxi_assets", imported="taxi_tools", as_packages=True)
