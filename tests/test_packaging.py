"""What ships: the production wheel holds the product only; the dev stack plugs in."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support import FLEET

ROOT = Path(__file__).resolve().parents[1]


def test_production_wheel_holds_no_dev_module(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("hybrid_orchestrator_fleet-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    packages = {name.split("/")[0] for name in names if not name.endswith(".dist-info/")}
    assert "worker" in packages and "handlers" in packages
    assert not [n for n in names if n.startswith(("devstack/", "tests/"))]
    assert not [n for n in names if "/local/" in n or "fake" in n.lower()]
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = [
        line
        for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    assert not [line for line in requires if "psutil" in line or "embedded" in line]


def test_dev_commands_come_from_the_devstack_plugin() -> None:
    shown = subprocess.run([*FLEET, "--help"], capture_output=True, text=True, check=True)
    assert "demo" in shown.stdout and "bench" in shown.stdout
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlib.metadata import entry_points;"
            "print(sorted(e.value for e in entry_points(group='fleet.commands')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "devstack.commands:demo" in found.stdout


def test_a_dev_command_without_the_devstack_says_so_in_one_line() -> None:
    script = (
        "import sys, worker.cli as cli;"
        "cli._plugins = lambda: [];"
        "sys.argv = ['fleet', 'bench'];"
        "cli.main()"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 2
    assert "devstack package is not installed" in result.stderr
    assert "Traceback" not in result.stderr
