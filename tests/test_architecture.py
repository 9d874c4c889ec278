"""The map of docs/architecture.md, enforced: which package may import which, where SQL
text may live, and how large a module or a function may grow."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("worker", "handlers")
MAX_MODULE_LINES = 350
MAX_FUNCTION_LINES = 60

# unit -> the units it may import (a unit is `handlers` or a top-level piece of `worker`).
# Data flows one way: queue -> consumer -> handler -> providers/sends -> store -> acks.
BASE = {"worker.errors", "worker.codec"}
LEAF = BASE | {"worker.config", "worker.contract"}
IO = LEAF | {"worker.aws", "worker.batcher", "worker.observability"}
ALLOWED: dict[str, set[str]] = {
    "worker.__init__": set(),  # the version string; anything may import it
    "worker.errors": set(),
    "worker.codec": set(),  # orjson with json behind it
    "worker.config": BASE,
    "worker.contract": BASE,
    "worker.aws": BASE | {"worker.config"},  # the proxy settings
    "worker.batcher": BASE | {"worker.aws", "worker.observability"},  # group commit spans
    "worker.observability": BASE | {"worker.aws"},
    "worker.outbound": LEAF | {"worker.observability"},
    "worker.store": IO,
    "worker.queue": IO,
    "worker.providers": IO | {"worker.outbound", "worker.store"},
    "worker.limits": IO | {"worker.outbound", "worker.store"},  # rate control (issue 14)
    "worker.sends": IO | {"worker.outbound", "worker.store", "worker.queue"},
    "handlers": LEAF | {"worker.providers", "worker.sends"},
    "worker.spend": IO | {"worker.outbound", "worker.providers", "worker.store"},
    "worker.consumer": IO
    | {
        "handlers",
        "worker.spend",
        "worker.outbound",
        "worker.limits",
        "worker.providers",
        "worker.sends",
        "worker.store",
        "worker.queue",
    },
    "worker.ops": IO | {"worker.store", "worker.queue", "worker.spend"},
    "worker.console": IO | {"worker.ops", "worker.store", "worker.queue"},
    "worker.producer": IO | {"worker.ops", "worker.store", "worker.queue"},
    "worker.commands": IO
    | {"worker.ops", "worker.store", "worker.queue", "worker.consumer", "worker.console"},
    "worker.cli": IO
    | {"worker.commands", "worker.ops", "worker.store", "worker.queue", "worker.consumer"},
}
SQL = re.compile(r"SELECT |INSERT INTO|UPDATE [a-z_]+ SET|DELETE FROM")


def sources(*tops: str) -> Iterator[tuple[str, Path]]:
    for top in tops:
        for path in sorted((ROOT / top).rglob("*.py")):
            yield ".".join(path.relative_to(ROOT).with_suffix("").parts), path


def unit(module: str) -> str:
    if module == "worker":
        return "worker.__init__"
    parts = module.split(".")
    if parts[0] == "worker" and len(parts) > 1:
        return f"worker.{parts[1]}"
    return parts[0]


def imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def test_each_package_imports_only_what_the_map_allows() -> None:
    wrong = []
    for module, path in sources(*PRODUCT):
        source = unit(module)
        for name in imports(path):
            target = unit(name)
            if target.split(".")[0] not in (*PRODUCT, "devstack", "tests"):
                continue
            if target not in (source, "worker.__init__") and target not in ALLOWED[source]:
                wrong.append(f"{module} imports {name}")
    assert wrong == []


def test_the_product_never_imports_the_dev_stack_or_the_tests() -> None:
    found = [
        f"{module} imports {name}"
        for module, path in sources(*PRODUCT)
        for name in imports(path)
        if name.split(".")[0] in ("devstack", "tests")
    ]
    assert found == []


def test_nothing_imports_the_cli() -> None:
    found = [
        module
        for module, path in sources(*PRODUCT, "devstack", "tests")
        if module != "tests.test_architecture"
        for name in imports(path)
        if name == "worker.cli"
    ]
    assert found == []


def test_sql_text_lives_only_in_the_store() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for module, path in sources("worker")
        if unit(module) != "worker.store"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if SQL.search(line)
    ]
    assert found == []


def test_modules_and_functions_stay_small() -> None:
    large = []
    for module, path in sources(*PRODUCT):
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            large.append(f"{module}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    large.append(f"{module}.{node.name}: {length} lines")
    assert large == []


def test_the_map_knows_every_package() -> None:
    assert {unit(module) for module, _ in sources(*PRODUCT)} <= set(ALLOWED)
