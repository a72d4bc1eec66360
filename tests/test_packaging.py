"""The built wheel: conf/ inside, the console script, the version from git, XGBoost per platform."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import defaultrisk

REPO = Path(__file__).resolve().parents[1]


def test_the_wheel_carries_conf_the_command_and_the_checkouts_version(tmp_path):
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            ".",
            "-w",
            tmp_path,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = tmp_path.glob("defaultrisk-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        # One source: every file of conf/ is in the package, byte for byte.
        for path in sorted((REPO / "conf").iterdir()):
            assert archive.read(f"defaultrisk/conf/{path.name}") == path.read_bytes(), path.name
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(f"{dist_info}/METADATA").decode()
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
    assert "defaultrisk/__main__.py" in names
    assert "defaultrisk = defaultrisk.cli:main" in entry_points
    assert f"Version: {defaultrisk.__version__}\n" in metadata
    assert 'Requires-Dist: xgboost-cpu<4,>=3.0; sys_platform != "darwin"' in metadata
    assert 'Requires-Dist: xgboost<4,>=3.0; sys_platform == "darwin"' in metadata
