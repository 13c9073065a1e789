"""dbt docs in the Airflow UI of `make ui`, checked in headless Chromium.

The server is `python -m tools.ui` itself (what `make ui` runs: airflow standalone), on a free
port against the session's PostgreSQL, so the variable it sets is the one under test. Chromium is
driven by tests/browser.py: its command line for pages, its DevTools pipe to click the Browse
menu, which renders its entries only once opened. Screenshots are kept under the folder printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import DevToolsPage, render
from tests.conftest import REPO_ROOT
from tools.postgres import ConnectionSettings, free_port
from tools.process_groups import stop_group

pytestmark = pytest.mark.integration

ARTIFACTS = REPO_ROOT / ".local" / "test-artifacts" / "dbt-docs-ui"
MENU_ENTRY = "dbt Docs (jaffle_shop)"
DOCS = "/cosmos/jaffle_shop/dbt_docs_index.html"
# `make ui` migrates and starts all of Airflow standalone: over 90 s on a 2-core machine at load 10.
START_TIMEOUT = 300.0


@pytest.fixture(scope="module")
def chromium() -> str:
    """Chromium from ci/ensure-chromium.sh; skipped with the reason when there is none, failed in CI."""
    result = subprocess.run(
        ["bash", "ci/ensure-chromium.sh"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["ci/ensure-chromium.sh failed"])[-1]
        if os.environ.get("CI"):
            pytest.fail(f"no Chromium on this CI machine: {reason}")
        pytest.skip(f"no Chromium: {reason}")
    return result.stdout.strip().splitlines()[-1]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


@pytest.fixture(scope="module")
def ui(
    postgres: ConnectionSettings, registered_projects: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`make ui` on a free loopback port; its whole process group is stopped afterwards."""
    port = free_port()
    log = tmp_path_factory.mktemp("ui") / "ui.log"
    env = {**os.environ, **postgres.as_env(), "UI_PORT": str(port), "PYTHONPATH": str(REPO_ROOT)}
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "tools.ui"], cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,  # `make ui` and anything it left stop together
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                _get(f"{url}/api/v2/version")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"`make ui` did not answer on {url}:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        yield url
    finally:
        stop_group(server, timeout=60)  # `make ui` stops standalone's own process group first


def _browse(chromium: str, profile: Path, url: str, screenshot: str) -> str:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    dom = render(chromium, profile, url, ARTIFACTS / screenshot)
    print(f"screenshot: {ARTIFACTS / screenshot}")
    return dom


# The Browse menu's entries, each [label, link], once the menu is open.
MENU_ITEMS = """Array.from(document.querySelectorAll('[role=menuitem]')).map(
    item => [item.textContent.trim(), (item.closest('a') || item.querySelector('a') || item).getAttribute('href')])"""


def test_the_browse_menu_lists_the_docs_and_the_ui_shows_them(ui: str, chromium: str, tmp_path: Path) -> None:
    plugins = json.loads(_get(f"{ui}/api/v2/plugins"))["plugins"]
    views = [view for plugin in plugins if plugin["name"] == "cosmos" for view in plugin["external_views"]]
    assert {"name": MENU_ENTRY, "category": "Browse", "href": DOCS} in [
        {key: view[key] for key in ("name", "category", "href")} for view in views
    ]
    page = DevToolsPage(chromium, tmp_path / "devtools", f"{ui}/")
    try:
        page.wait_for("!!document.querySelector('button[aria-label=Browse]')")
        page.evaluate("document.querySelector('button[aria-label=Browse]').click()")
        items = page.wait_for(f"(items => items.some(i => i[0] === {json.dumps(MENU_ENTRY)}) && items)({MENU_ITEMS})")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(ARTIFACTS / "browse-menu.png")
        print(f"screenshot: {ARTIFACTS / 'browse-menu.png'}")
    finally:
        page.close()
    assert [MENU_ENTRY, DOCS] in items
    # The route the UI gives an external view without url_route: its name, lowercased, first space a dash.
    page = _browse(chromium, tmp_path, f"{ui}/plugin/dbt-docs%20(jaffle_shop)", "browse-dbt-docs.png")
    assert f'src="{DOCS}"' in page
    assert f'title="{MENU_ENTRY}"' in page


def test_the_docs_page_shows_the_projects_models(ui: str, chromium: str, tmp_path: Path) -> None:
    overview = _browse(chromium, tmp_path, f"{ui}{DOCS}#!/overview", "docs-overview.png")
    # index.html is dbt's generic app: the project appears only once it has read manifest.json.
    assert "jaffle_shop" in overview
    model = _browse(chromium, tmp_path, f"{ui}{DOCS}#!/model/model.jaffle_shop.customers", "docs-customers.png")
    assert "One row per customer with their first and most recent order" in model
    assert "customer_lifetime_value" in model
    for name in ("catalog.json", "manifest.json"):
        assert json.loads(_get(f"{ui}/cosmos/jaffle_shop/{name}"))["metadata"]["dbt_version"].startswith("1.")
