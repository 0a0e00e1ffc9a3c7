"""The exported pytest plugin works when enabled either documented way, or both at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

USER_TEST = """
import httpx

def test_uses_the_fixture(scripted_server):
    response = httpx.post(
        scripted_server.base_url + "/chat/completions",
        json={"messages": [{"role": "user", "content": "ping"}]},
    )
    assert response.json()["choices"][0]["message"]["content"] == "You said: ping"
    assert len(scripted_server.requests) == 1
"""
PLUGIN = "oaicompat.testing.pytest_plugin"
ENTRY_POINT = f"[pytest11]\n{PLUGIN} = {PLUGIN}\n"
"""The entry point the package declares: named after the module, so that a
``pytest_plugins`` line naming the module finds it registered already."""


@pytest.mark.parametrize(
    ("conftest_line", "entry_point"), [(True, False), (False, True), (True, True)]
)
def test_the_fixture_is_available(tmp_path: Path, conftest_line: bool, entry_point: bool) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_user.py").write_text(USER_TEST)
    if conftest_line:
        (project / "conftest.py").write_text(f"pytest_plugins = [{PLUGIN!r}]\n")
    env = dict(os.environ)
    if not entry_point:
        # The pytest_plugins line is for runs where installed plugins are not autoloaded.
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    if entry_point:
        dist_info = tmp_path / "site" / "oaicompat_plugin_probe-0.0.dist-info"
        dist_info.mkdir(parents=True)
        (dist_info / "METADATA").write_text("Name: oaicompat-plugin-probe\nVersion: 0.0\n")
        (dist_info / "entry_points.txt").write_text(ENTRY_POINT)
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(dist_info.parent), env.get("PYTHONPATH")])
        )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
