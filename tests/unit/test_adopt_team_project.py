"""`make adopt` (tools/adopt.py) on a team-shaped project: the acme fixture, with a local package,
selectors, snapshots and sources, adopted into a copy of the repository."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.unit.test_adopt import ACME_FIXTURE, config, copy_of_repo, run_adopt


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return copy_of_repo(tmp_path)


@pytest.mark.skipif(not ACME_FIXTURE.is_dir(), reason="the acme fixture project is not there yet")
def test_adopting_a_team_shaped_project(tmp_path: Path, repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "acme"
    shutil.copytree(ACME_FIXTURE, source, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    code, out, err = run_adopt(capsys, repo, str(source))
    assert (code, err) == (0, "")
    dest = repo / "dbt" / "acme"
    link = dest / "dbt_packages" / "acme_utils"
    assert os.readlink(link) == "../packages/acme_utils"  # relative: survives the move out of staging
    assert (link / "dbt_project.yml").exists()
    registration = config(repo, "acme").read_text()
    assert "# This project's selectors (selectors.yml): nightly, hourly, finance." in registration
    assert "profile: kept dbt/acme/profiles.yml" in out[1]
    assert any(line.startswith("  - the source tables must exist in the warehouse: acme_raw.customers") for line in out)
    assert "snapshot" in out[4]
