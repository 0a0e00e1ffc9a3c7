"""Every notebook runs top to bottom against the built-in scripted server, in a real kernel.

The kernel is this interpreter (``sys.executable -m ipykernel_launcher``), whatever
kernelspecs the machine has installed, and its runtime and profile files go to a
temporary directory: nothing global is read or written.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
kernelspec = pytest.importorskip("jupyter_client.kernelspec")
manager = pytest.importorskip("jupyter_client.manager")

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
EXPECTED = {"quickstart.ipynb", "langchain.ipynb", "llamaindex.ipynb"}
CELL_TIMEOUT = 120
"""Seconds per cell: generous, since a loaded CI machine can be slow to import LlamaIndex."""


class _ThisPythonKernels(kernelspec.KernelSpecManager):  # type: ignore[misc]
    """Every kernel name means "this interpreter", so no installed kernelspec is consulted."""

    def get_kernel_spec(self, kernel_name: str) -> Any:
        return kernelspec.KernelSpec(
            argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            display_name=f"Python ({sys.executable})",
            language="python",
        )


def _notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def _code_cells(notebook: Any) -> list[Any]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_the_notebooks_are_there() -> None:
    assert {path.name for path in _notebooks()} == EXPECTED


@pytest.mark.parametrize("path", _notebooks(), ids=lambda path: path.stem)
def test_stored_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in _code_cells(notebook):
        assert cell.outputs == [], f"{path.name}: strip the outputs"
        assert cell.execution_count is None, f"{path.name}: strip the execution counts"
        assert "asyncio.run(" not in cell.source, "notebooks use top-level await"
    setup = _code_cells(notebook)[0].source
    assert "ScriptedServer().start()" in setup
    assert 'os.environ.get("OAICOMPAT_BASE_URL")' in setup


@pytest.fixture
def kernel_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The kernel inherits this environment: no real server, no profile in the home directory.
    for name in ("OAICOMPAT_BASE_URL", "OAICOMPAT_MODEL", "OAICOMPAT_PROFILE", "OAICOMPAT_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))


@functools.cache  # the quickstart is checked twice but run once
def _execute(path: Path) -> Any:
    notebook = nbformat.read(path, as_version=4)
    kernel = manager.KernelManager(kernel_name="python3", kernel_spec_manager=_ThisPythonKernels())
    client = nbclient.NotebookClient(
        notebook,
        km=kernel,
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    try:
        client.execute(cleanup_kc=True)  # a CellExecutionError fails the test with the cell's trace
    finally:
        if kernel.has_kernel:
            kernel.shutdown_kernel(now=True)
    return notebook


@pytest.mark.timeout(170)
@pytest.mark.usefixtures("kernel_environment")
@pytest.mark.parametrize("path", _notebooks(), ids=lambda path: path.stem)
def test_runs_top_to_bottom(path: Path) -> None:
    notebook = _execute(path)

    for cell in _code_cells(notebook):
        assert cell.execution_count is not None
        assert all(output.output_type != "error" for output in cell.outputs)
    first_output = _code_cells(notebook)[0].outputs[0].text
    assert "at http://127.0.0.1:" in first_output  # the built-in server answered


@pytest.mark.timeout(170)
@pytest.mark.usefixtures("kernel_environment")
def test_streaming_display_updates_one_output_in_place() -> None:
    notebook = _execute(NOTEBOOKS / "quickstart.ipynb")

    (cell,) = [c for c in _code_cells(notebook) if "= stream_to_notebook(" in c.source]
    displays = [output for output in cell.outputs if output.output_type == "display_data"]
    # One output, updated in place to the final answer (not one output per token).
    assert len(displays) == 1
    final = displays[0].data["text/markdown"]
    assert final.startswith("You said: Write a haiku about local models.")
    assert "total tokens" in final
