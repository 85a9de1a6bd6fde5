"""examples/quickstart.ipynb, executed cell by cell in a real ipykernel running this interpreter,
against the sandbox: every cell succeeds and shows the HTML a reader is promised."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from tests.notebooks._html_check import Parsed, check_safe

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "quickstart.ipynb"
KERNEL = "proximity-tests"


class _RecordingClient(NotebookClient):
    """Also keeps, per cell id, the display messages the kernel sent (the notebook only keeps the
    final state of an updated display)."""

    messages: dict[str, list[tuple[str, str | None, str]]]

    def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
        if msg["msg_type"] in {"display_data", "update_display_data"}:
            content = msg["content"]
            self.messages.setdefault(cell.id, []).append(
                (
                    msg["msg_type"],
                    content.get("transient", {}).get("display_id"),
                    content.get("data", {}).get("text/html", ""),
                )
            )
        return super().process_message(msg, cell, cell_index)


def _kernel_manager(tmp_path: Path) -> KernelManager:
    """A kernelspec that runs exactly this interpreter (the .venv's), whatever kernels the machine has."""
    spec = tmp_path / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Proximity tests",
                "language": "python",
            }
        )
    )
    specs = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")])
    return KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)


def _html(cell: Any) -> list[Parsed]:
    return [
        check_safe(out["data"]["text/html"])
        for out in cell.outputs
        if out.get("output_type") in {"display_data", "execute_result"} and "text/html" in out.get("data", {})
    ]


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp_path = tmp_path_factory.mktemp("quickstart")
    with pytest.MonkeyPatch.context() as env:
        # the kernel keeps its files (connection file, IPython profile) in tmp_path, not in $HOME
        env.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
        env.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
        env.delenv("PROXIMITY_SECRET_KEY", raising=False)
        nb = nbformat.read(NOTEBOOK, as_version=4)
        client = _RecordingClient(
            nb,
            km=_kernel_manager(tmp_path),
            timeout=60,
            startup_timeout=60,
            resources={"metadata": {"path": str(tmp_path)}},
        )
        client.messages = {}
        client.execute()  # raises CellExecutionError for the first cell that fails
    return {"cells": {cell.id: cell for cell in nb.cells}, "messages": client.messages}


def test_every_cell_ran_without_error(executed: dict[str, Any]) -> None:
    code = [cell for cell in executed["cells"].values() if cell.cell_type == "code"]
    assert len(code) >= 12
    for cell in code:
        assert cell.execution_count is not None, cell.id
        for out in cell.outputs:
            assert out["output_type"] != "error", (cell.id, out)
            assert not (out["output_type"] == "stream" and out["name"] == "stderr"), (cell.id, out["text"])


def test_the_notebook_is_committed_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.id


def test_host_nodes_and_catalog_render_as_html(executed: dict[str, Any]) -> None:
    (host,) = _html(executed["cells"]["host"])
    assert host.attr_values("data-model") == ["Host"] and "sandbox" in host.all_text
    (nodes,) = _html(executed["cells"]["nodes"])
    assert "pve1" in nodes.all_text and "pve2" in nodes.all_text and "online" in nodes.all_text
    (search,) = _html(executed["cells"]["catalog-search"])
    assert search.attr_values("class") and "proximity-listing" in search.attr_values("class")
    assert "gitea" in search.all_text and int(search.attr_values("data-count")[0]) >= 1
    (entry,) = _html(executed["cells"]["catalog-entry"])
    assert entry.attr_values("data-model") == ["CatalogApp"] and "Gitea" in entry.all_text


def test_the_deploy_showed_live_progress_that_ended_succeeded(executed: dict[str, Any]) -> None:
    (card,) = _html(executed["cells"]["deploy"])  # one display, updated in place to its final state
    assert card.attr_values("data-status") == ["succeeded"]
    assert "100%" in card.all_text and "deploy succeeded" in card.all_text
    assert "✓ health" in card.all_text
    # live: the kernel showed a card while the deploy was not finished, then updated that same display
    sent = executed["messages"]["deploy"]
    first_type, display_id, first_html = sent[0]
    assert first_type == "display_data" and display_id
    assert Parsed(first_html).attr_values("data-status")[0] in {"pending", "running"}
    updates = sent[1:]
    assert updates and all(kind == "update_display_data" and did == display_id for kind, did, _ in updates)
    assert Parsed(updates[-1][2]).attr_values("data-status") == ["succeeded"]


def test_the_app_is_running_and_then_gone(executed: dict[str, Any]) -> None:
    (app,) = _html(executed["cells"]["app"])
    assert app.attr_values("data-model") == ["App"]
    assert "my-gitea" in app.all_text and "running" in app.all_text
    (apps,) = _html(executed["cells"]["apps"])
    assert apps.attr_values("data-count") == ["1"] and "my-gitea" in apps.all_text
    (deleted,) = _html(executed["cells"]["delete"])
    assert deleted.attr_values("data-status") == ["succeeded"]
    (after,) = _html(executed["cells"]["after-delete"])
    assert after.all_text.strip() == "no items"


def test_credentials_show_masked(executed: dict[str, Any]) -> None:
    (creds,) = _html(executed["cells"]["credentials"])
    text = creds.all_text
    assert "DB_PASSWORD" in text and "root_password" in text
    assert text.count("••••••••") == 2  # the root password and the database password, masked


def test_the_backup_completed_and_is_listed(executed: dict[str, Any]) -> None:
    (card,) = _html(executed["cells"]["backup"])
    assert card.attr_values("data-status") == ["succeeded"]
    (backups,) = _html(executed["cells"]["backups"])
    assert backups.attr_values("data-count") == ["1"]
    assert "completed" in backups.all_text and "before the upgrade" in backups.all_text
