"""The layout's rules: the environment is read at load in one place, the packages import in
one direction, the product never imports the tools."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "taxi_assets"


def python_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def environment_reads(tree: ast.AST) -> list[int]:
    """Lines that read or change the process environment: `os.environ` (or `environ` imported from
    os) and `os.getenv`/`putenv`/`unsetenv`, except `{**os.environ, ...}`, which hands this
    process's environment on whole to a child process without looking up anything in it."""
    passed_on = {
        id(value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Dict)
        for key, value in zip(node.keys, node.values, strict=True)
        if key is None  # `**mapping` in a dict display
    }
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            lines += [node.lineno for alias in node.names if alias.name in ("environ", "getenv", "putenv", "unsetenv")]
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and node.attr in ("environ", "environb", "getenv", "getenvb", "putenv", "unsetenv")
            and id(node) not in passed_on
        ):
            lines.append(node.lineno)
    return sorted(lines)


def test_settings_are_read_from_the_environment_only_where_the_definitions_are_built():
    # Every setting is a resource field filled in taxi_assets/defs/resources.py; nothing else in
    # the product reads os.environ (a run sees its resources' values, run config included).
    readers = [
        f"{p.relative_to(REPO)}:{line}"
        for p in python_files(PACKAGE)
        if p != PACKAGE / "defs" / "resources.py"
        for line in environment_reads(ast.parse(p.read_text()))
    ]
    assert readers == [], "read settings through taxi_assets/defs/resources.py (resource fields, load_settings)"


def test_the_environment_rule_sees_reads_and_changes():
    seen = environment_reads(
        ast.parse(
            "import os\nfrom os import environ\na = os.environ.get('X')\nb = os.getenv('Y')\n"
            "os.environ['Z'] = '1'\nc = {**os.environ, 'A': '1'}\nd = dict(os.environ)\n"
        )
    )
    assert seen == [2, 3, 4, 5, 7]


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
