"""`make adopt` (tools/adopt.py): each refusal is one line and leaves the repository byte-for-byte
unchanged; an adoption copies, profiles, registers and parses for real (`dbt parse` needs no
database). Every test works on a temporary copy of the repository's dbt/ and config/ folders."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.version import Version

from include.blueprint.settings import load_settings
from tests.conftest import REPO_ROOT
from tools import adopt as adopt_module
from tools.adopt import SCHEMA_MACRO, main
from tools.adopt_checks import dbt_specifiers

ACME_FIXTURE = REPO_ROOT / "tests" / "fixtures" / "dbt_projects" / "acme"
LOCKED_DBT = Version("1.11.16")

ENV_PROFILE = """\
shop:
  target: dev
  outputs:
    dev:
      type: postgres
      host: "{{ env_var('POSTGRES_HOST') }}"
      port: "{{ env_var('POSTGRES_PORT', '5432') | as_number }}"
      user: "{{ env_var('POSTGRES_USER') }}"
      password: "{{ env_var('POSTGRES_PASSWORD') }}"
      dbname: "{{ env_var('POSTGRES_DATABASE') }}"
      schema: "{{ env_var('POSTGRES_SCHEMA', 'shop') }}"
      threads: 2
"""
PASSWORD_PROFILE = """\
shop:
  target: dev
  outputs:
    dev: {type: postgres, host: db.internal, port: 5432, user: shop, password: hunter2, dbname: shop, schema: shop,
          threads: 1}
"""
SNOWFLAKE_PROFILE = """\
shop:
  target: prod
  outputs:
    prod: {type: snowflake, account: acme, user: "{{ env_var('SF_USER') }}", database: analytics, schema: shop}
"""


def write_files(folder: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)
    return folder


def write_project(folder: Path, **overrides: str) -> Path:
    """A minimal team project: one seed, one model with a test, one source."""
    files = {
        "dbt_project.yml": "name: shop\nversion: '1.0'\nconfig-version: 2\nprofile: shop\n"
        "flags:\n  send_anonymous_usage_stats: false\n",
        "profiles.yml": ENV_PROFILE,
        "seeds/raw_orders.csv": "id,amount\n1,10\n2,20\n",
        "models/orders.sql": "select id, amount from {{ ref('raw_orders') }}\n",
        "models/schema.yml": "version: 2\nmodels:\n  - name: orders\n    columns:\n      - name: id\n"
        "        data_tests: [not_null]\n"
        "sources:\n  - name: raw\n    schema: raw_data\n    tables:\n      - name: payments\n",
    }
    return write_files(folder, {**files, **overrides})


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return copy_of_repo(tmp_path)


def copy_of_repo(tmp_path: Path) -> Path:
    """The parts of the repository adopt reads and writes, copied; the real one is never touched."""
    root = tmp_path / "repo"
    build_output = shutil.ignore_patterns("target", "logs", "dbt_packages", ".user.yml")
    shutil.copytree(REPO_ROOT / "dbt", root / "dbt", ignore=build_output)
    shutil.copytree(REPO_ROOT / "include" / "blueprint" / "config", root / "include" / "blueprint" / "config")
    return root


def snapshot(folder: Path, skip_content: tuple[str, ...] = ()) -> dict[str, object]:
    """Every path under `folder` with its bytes (a link's target; only the name under skip_content)."""
    tree: dict[str, object] = {}
    for directory, folders, files in os.walk(folder):
        for name in folders + files:
            path = Path(directory) / name
            relative = path.relative_to(folder).as_posix()
            if path.is_symlink():
                tree[relative] = f"-> {os.readlink(path)}"
            elif path.is_dir():
                tree[relative] = "folder"
            else:
                skipped = any(relative.startswith(prefix) for prefix in skip_content)
                tree[relative] = b"" if skipped else path.read_bytes()
    return tree


def run_adopt(capsys: pytest.CaptureFixture[str], repo: Path, *args: str) -> tuple[int, list[str], str]:
    code = main(list(args), root=repo)
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def config(repo: Path, name: str) -> Path:
    return repo / "include" / "blueprint" / "config" / "projects" / f"{name}.yaml"


# --- Refusals: one line `error: <problem>: <fix>`, exit code 2, nothing changed -----------------

Setup = Callable[[Path, Path], list[str]]


def _project_with(**files: str) -> Setup:
    return lambda tmp_path, repo: [str(write_project(tmp_path / "shop", **files))]


def _without(key: str) -> Setup:
    project = "name: shop\nconfig-version: 2\nprofile: shop\n".replace(f"{key}: shop\n", "")
    return _project_with(**{"dbt_project.yml": project})


def _local_package_outside(tmp_path: Path, repo: Path) -> list[str]:
    (tmp_path / "shared").mkdir()
    return [str(write_project(tmp_path / "shop", **{"packages.yml": "packages:\n  - local: ../shared\n"}))]


def _registered_elsewhere(tmp_path: Path, repo: Path) -> list[str]:
    config(repo, "other").write_text("projects:\n  shop:\n    project_dir: dbt/elsewhere\n    profile: shop\n")
    return [str(write_project(tmp_path / "shop"))]


REFUSALS: dict[str, tuple[Setup, str]] = {
    "missing folder": (lambda tmp_path, repo: [str(tmp_path / "nowhere")], r"is not a folder, so not a dbt project: "),
    "not a dbt project": (
        lambda tmp_path, repo: [str(tmp_path)],
        r"is not a dbt project \(no dbt_project.yml\): pass the folder that holds dbt_project.yml",
    ),
    "no project given": (lambda tmp_path, repo: [], r"no project given: make adopt PROJECT="),
    "unreadable YAML": (
        _project_with(**{"dbt_project.yml": "name: [shop\nprofile: shop\n"}),
        r"dbt_project.yml is not valid YAML \(line \d+\): fix dbt_project.yml",
    ),
    "no name": (_without("name"), r"dbt_project.yml has no `name`: add `name: <project_name>`"),
    "no profile": (_without("profile"), r"dbt_project.yml has no `profile`: add `profile: <profile_name>`"),
    "dbt version out of range (list)": (
        _project_with(
            **{"dbt_project.yml": 'name: shop\nprofile: shop\nrequire-dbt-version: [">=1.5.0", "<1.10.0"]\n'}
        ),
        r"require-dbt-version >=1.5.0, <1.10.0 excludes dbt 1\.11\.\d+, the version the blueprint installs .*: "
        r"widen require-dbt-version",
    ),
    "dbt version out of range (string)": (
        _project_with(**{"dbt_project.yml": "name: shop\nprofile: shop\nrequire-dbt-version: '>=2.0.0'\n"}),
        r"require-dbt-version >=2.0.0 excludes dbt 1\.11\.\d+.*: .*`make lock`",
    ),
    "snowflake adapter": (
        _project_with(**{"profiles.yml": SNOWFLAKE_PROFILE}),
        r"adapter snowflake is not supported \(profiles.yml, profile shop, output prod\): "
        r"the blueprint runs dbt-postgres only",
    ),
    "unreadable profiles.yml": (
        _project_with(**{"profiles.yml": "shop: {target: dev\n"}),
        r"profiles.yml is not valid YAML \(line \d+\): fix it, or delete it",
    ),
    "missing local package": (
        _project_with(**{"packages.yml": "packages:\n  - local: packages/utils\n"}),
        r"local package packages/utils \(packages.yml\) does not exist: fix its path",
    ),
    "local package outside the project": (
        _local_package_outside,
        r"local package ../shared \(packages.yml\) is not inside the project folder.*: move it into the project "
        r"\(e.g. packages/shared\)",
    ),
    "invalid name": (
        _project_with(**{"dbt_project.yml": "name: Shop-Analytics\nprofile: shop\n"}),
        r"'shop-analytics' cannot name a project here .*: choose a name: make adopt PROJECT=\.\.\. NAME=shop_analytics",
    ),
    "name registered for another folder": (
        _registered_elsewhere,
        r"project shop is already registered for dbt/elsewhere in include/blueprint/config/projects/other.yaml: "
        r"choose another name with NAME=",
    ),
    "folder holds another project": (
        lambda tmp_path, repo: [str(write_project(tmp_path / "shop")), "--name", "jaffle_shop"],
        r"dbt/jaffle_shop/ already holds another dbt project \(jaffle_shop\): choose another name with NAME=",
    ),
    "hub package without network": (
        _project_with(**{"packages.yml": 'packages:\n  - package: dbt-labs/dbt_utils\n    version: [">=1.0.0"]\n'}),
        r"`dbt deps` could not install dbt-labs/dbt_utils: hub and git packages need network at manifest time: "
        r"run `make adopt` where hub.getdbt.com .* is reachable; it installs them in dbt/shop/dbt_packages/",
    ),
    "model that does not parse": (
        _project_with(**{"models/orders.sql": "select {{ ref('orders', 'a', 'b', 'c') }}\n"}),
        r"`dbt parse` failed: .+: fix the project",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusal_is_one_line_and_changes_nothing(
    case: str, tmp_path: Path, repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An unreachable package hub, so the hub case fails the same way on a machine with network.
    monkeypatch.setenv("DBT_PACKAGE_HUB_URL", "http://127.0.0.1:9/")
    setup, message = REFUSALS[case]
    args = setup(tmp_path, repo)
    before, source_before = snapshot(repo), snapshot(tmp_path / "shop")
    assert_refused(run_adopt(capsys, repo, *args), message)
    assert snapshot(repo) == before
    assert snapshot(tmp_path / "shop") == source_before


def assert_refused(result: tuple[int, list[str], str], message: str) -> None:
    code, out, err = result
    assert (code, out) == (2, [])
    assert err.startswith("error: ")
    assert err.endswith("\n")
    assert err.count("\n") == 1, err
    assert re.search(message, err), err


def test_refused_without_dbt(tmp_path: Path, repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_project(tmp_path / "shop")
    before = snapshot(repo)
    code = main([str(source)], root=repo, dbt=tmp_path / "no-dbt")
    captured = capsys.readouterr()
    assert_refused((code, captured.out.splitlines(), captured.err), r"no dbt at .*: build the virtual environments")
    assert snapshot(repo) == before


@pytest.mark.parametrize(
    ("required", "accepted"),
    [
        (">=1.5.0", True),
        ([">=1.5.0", "<2.0.0"], True),
        (">=1.5.0,<1.10.0", False),
        ("1.11.16", True),
        ("=1.11.16", True),
        ("1.10.0", False),
        ("1.11.*", True),
        ("<1.11.0", False),
    ],
)
def test_dbt_version_requirements_read_as_dbt_reads_them(required: str | list[str], accepted: bool) -> None:
    assert dbt_specifiers(required).contains(LOCKED_DBT, prereleases=True) is accepted


# dbt's own output of each parse: its timestamps differ from run to run.
DBT_OUTPUT = ("dbt/shop/target/", "dbt/shop/logs/")

# --- Adoptions ---------------------------------------------------------------------------------

SHOP_REGISTRATION = """\
# shop: registered by `make adopt` (tools/adopt.py). Yours to edit; see the README, "Use your own dbt project".
projects:
  shop:
    project_dir: dbt/shop
    profile: shop
    # The schema dbt builds into (POSTGRES_SCHEMA for the container modes).
    target_schema: shop
    dags:
      # One DAG per enabled execution mode, id shop_<mode>, building every node on dags.schedule.
      - id: "{project}_{mode}"
      # More DAGs of this project, for example an hourly slice and a downstream on its marts:
      # - id: shop_hourly
      #   select: ["tag:hourly"]
      #   schedule: "@hourly"
      # - id: shop_finance
      #   selector: finance                     # a selector of the project's selectors.yml
      #   schedule: {assets: [shop.<model>]}    # runs when that model is rebuilt
"""


def test_adopt_copies_keeps_the_env_profile_registers_and_parses(
    tmp_path: Path, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_project(tmp_path / "shop")
    write_files(
        source, {"target/old.json": "{}", "logs/dbt.log": "", "dbt_packages/x/a": "", ".git/HEAD": "", ".user.yml": ""}
    )
    code, out, err = run_adopt(capsys, repo, str(source))
    assert (code, err) == (0, "")
    dest = repo / "dbt" / "shop"
    assert sorted(path.name for path in dest.iterdir()) == [
        "dbt_project.yml",
        "logs",  # this adoption's own `dbt parse`
        "macros",  # the blueprint's postgres__create_schema
        "models",
        "profiles.yml",
        "seeds",
        "target",
    ]
    assert not (dest / "target" / "old.json").exists()
    assert (dest / "profiles.yml").read_text() == ENV_PROFILE
    assert config(repo, "shop").read_text() == SHOP_REGISTRATION
    manifest = json.loads((dest / "target" / "manifest.json").read_text())
    built = [node for node in manifest["nodes"].values() if node["resource_type"] in ("model", "seed")]
    assert {node["schema"] for node in built} == {"shop"}  # the target schema, not the parse placeholder
    assert out[0] == f"adopted shop: copied {source} -> dbt/shop (without target/, logs/, dbt_packages/)"
    assert out[1] == "profile: kept dbt/shop/profiles.yml (it reads its connection from the POSTGRES_* variables)"
    assert out[2] == "registered: include/blueprint/config/projects/shop.yaml"
    assert out[3] == (
        "schema creation: added dbt/shop/macros/blueprint_create_schema.sql"
        " (concurrent tasks create a fresh target schema without a race)"
    )
    assert (dest / "macros" / SCHEMA_MACRO.name).read_text() == SCHEMA_MACRO.read_text()
    assert "macro.shop.postgres__create_schema" in manifest["macros"]  # dbt uses it over its own
    assert out[4] == "manifest: dbt/shop/target/manifest.json (1 model, 1 seed, 0 snapshots, 1 test, 1 source)"
    assert out[5] == "DAGs: shop_local (one per mode in execution.enabled_modes)"
    assert "  - the source tables must exist in the warehouse: raw_data.payments" in out
    assert any("`enabled: false` in include/blueprint/config/projects/jaffle_shop.yaml" in line for line in out)
    assert not [path for path in (repo / "dbt").iterdir() if path.name.startswith(".adopt-")]
    # The settings loader reads the registration as written.
    assert load_settings({}, repo_root=repo).projects["shop"].target_schema == "shop"


def test_literal_password_is_never_copied_and_name_renames(
    tmp_path: Path, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_project(tmp_path / "shop", **{"profiles.yml": PASSWORD_PROFILE})
    code, out, _ = run_adopt(capsys, repo, str(source), "--name", "Sales")
    assert code == 0
    profile = (repo / "dbt" / "sales" / "profiles.yml").read_text()
    assert "shop:\n  target: dev\n" in profile
    assert "env_var('POSTGRES_PASSWORD')" in profile
    assert "env_var('POSTGRES_SCHEMA', 'sales')" in profile
    assert not [
        path for path, content in snapshot(repo).items() if isinstance(content, bytes) and b"hunter2" in content
    ]
    assert "profile: shop" in config(repo, "sales").read_text()
    assert "target_schema: sales" in config(repo, "sales").read_text()
    assert "literal password" in out[1]
    assert "DAGs: sales_local (one per mode in execution.enabled_modes)" in out


def test_readopting_resyncs_and_keeps_an_edited_registration(
    tmp_path: Path, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_project(tmp_path / "shop", **{"models/extra.sql": "select 1 as id\n"})
    assert run_adopt(capsys, repo, str(source))[0] == 0
    first = snapshot(repo, skip_content=DBT_OUTPUT)
    edited = config(repo, "shop").read_text().replace("dags:\n", "enabled: false\n    dags:\n")
    config(repo, "shop").write_text(edited)
    (source / "models" / "extra.sql").unlink()
    code, out, _ = run_adopt(capsys, repo, str(source))
    assert code == 0
    second = snapshot(repo, skip_content=DBT_OUTPUT)
    assert set(first) - set(second) == {"dbt/shop/models/extra.sql"}
    assert second.pop("include/blueprint/config/projects/shop.yaml") == edited.encode()
    first.pop("include/blueprint/config/projects/shop.yaml")
    assert {key: value for key, value in first.items() if key != "dbt/shop/models/extra.sql"} == second
    assert "registration: include/blueprint/config/projects/shop.yaml exists, left as is" in out


def test_adopting_a_project_already_under_dbt_works_in_place(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = write_project(repo / "dbt" / "shop", **{"profiles.yml": PASSWORD_PROFILE})
    code, out, _ = run_adopt(capsys, repo, str(project))
    assert code == 0
    assert out[0] == "adopted shop: dbt/shop in place (nothing copied)"
    assert "hunter2" not in (project / "profiles.yml").read_text()
    assert (project / "models" / "orders.sql").exists()
    assert (project / "target" / "manifest.json").exists()
    assert config(repo, "shop").read_text() == SHOP_REGISTRATION


def test_a_failed_registration_puts_the_previous_folder_back(
    tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    previous = write_project(repo / "dbt" / "shop")
    before = snapshot(repo)
    staging = write_project(repo / "dbt" / ".adopt-shop-staged", **{"models/orders.sql": "select 2\n"})
    plan = adopt_module.plan_adoption(previous, None, repo)

    def failing_register(root: Path, plan: object) -> bool:
        raise OSError("disk full")

    monkeypatch.setattr(adopt_module, "register", failing_register)
    with pytest.raises(OSError, match="disk full"):
        adopt_module.install(staging, plan, repo)
    assert snapshot(repo) == before
