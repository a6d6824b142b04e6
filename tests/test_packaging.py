"""The built distribution: only ``fspace`` at the top of site-packages, every package inside."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _source_packages() -> set[str]:
    """Every package folder of the source tree, named as it installs (app/ -> fspace.app)."""
    names = set()
    for top, installed in (("fspace", "fspace"), ("app", "fspace.app")):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top).parts
            names.add(".".join((installed, *rel)))
    return names


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("fspace-*.whl")
    with zipfile.ZipFile(path) as archive:
        yield archive


@pytest.mark.slow
def test_the_wheel_installs_no_top_level_module_but_fspace(wheel):
    tops = {name.split("/")[0] for name in wheel.namelist()}
    tops = {t for t in tops if not t.endswith(".dist-info")}
    assert tops == {"fspace"}
    assert (ROOT / "app" / "server.py").is_file()  # the repository keeps app/ at its root


@pytest.mark.slow
def test_the_wheel_holds_every_package_and_the_dashboard_assets(wheel):
    names = set(wheel.namelist())
    packaged = {
        name[: -len("/__init__.py")].replace("/", ".")
        for name in names
        if name.endswith("/__init__.py")
    }
    missing = _source_packages() - packaged
    assert not missing, f"add these to [tool.setuptools] packages in pyproject.toml: {missing}"
    assert any(n.startswith("fspace/app/assets/") and n.endswith(".css") for n in names)
