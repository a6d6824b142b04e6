"""The quick-start script from the README records what it says, and exports."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fspace import Experiment
from fspace.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quickstart_records_six_runs_and_exports(tmp_path, capsys):
    shutil.copy(ROOT / "examples" / "quickstart.py", tmp_path)
    done = subprocess.run(
        [sys.executable, "quickstart.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    exp = Experiment(tmp_path / "checkpoints" / "quickstart")
    assert sorted(r.id for r in exp.runs()) == [
        "adam-s0",
        "adam-s1",
        "adam-s2",
        "sgd-s0",
        "sgd-s1",
        "sgd-s2",
    ]
    assert len(exp.checkpoints()) == 6 * 11
    for suffix in ("png", "html"):
        out = tmp_path / f"map.{suffix}"
        assert main(["export", str(exp.path), "-o", str(out), "-q"]) == 0
        assert out.stat().st_size > 10_000
    html = (tmp_path / "map.html").read_text()
    assert all(f"adam-s{i}" in html and f"sgd-s{i}" in html for i in range(3))
