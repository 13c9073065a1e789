"""`make adopt PROJECT=path [NAME=name]`: bring a team's dbt project into the blueprint.

Everything that can be checked is checked first: a refusal is one line, `error: <problem>: <fix>`,
exit code 2, and nothing on disk changed. Then the project is copied into a staging folder next to
dbt/<name>/, given the blueprint's environment-variable profile where its own would not do, and
parsed there (`dbt deps` when it declares packages, then `dbt parse`; no database). Only when that
succeeded does the staging folder replace dbt/<name>/ and the project get registered in
include/blueprint/config/projects/<name>.yaml.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import string
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from tools.adopt_checks import REGISTRATIONS, AdoptRefused, Plan, blueprint_defaults, plan_adoption, shown
from tools.manifest import parse_project

REPO_ROOT = Path(__file__).resolve().parents[1]
DBT = REPO_ROOT / ".venvs" / "dbt" / "bin" / "dbt"
# dbt's output and local state, next to any dbt_project.yml: rebuilt by dbt, never the team's code.
BUILD_OUTPUT = frozenset({"target", "logs", "dbt_packages", ".user.yml"})
# dbt's postgres__create_schema made safe for concurrent tasks (the file says why).
SCHEMA_MACRO = Path(__file__).resolve().parent / "adopt_files" / "blueprint_create_schema.sql"
OWN_SCHEMA_MACRO = re.compile(r"\bmacro\s+postgres__create_schema\s*\(")
PROFILE = string.Template("""\
# Written by `make adopt` (tools/adopt.py). Connection settings come only from the environment
# (the blueprint's POSTGRES_* contract), so the same file serves local runs, CI and the workers.
$profile:
  target: $target
  outputs:
    $target:
      type: postgres
      host: "{{ env_var('POSTGRES_HOST') }}"
      port: "{{ env_var('POSTGRES_PORT', '5432') | as_number }}"
      user: "{{ env_var('POSTGRES_USER') }}"
      password: "{{ env_var('POSTGRES_PASSWORD') }}"
      dbname: "{{ env_var('POSTGRES_DATABASE') }}"
      schema: "{{ env_var('POSTGRES_SCHEMA', '$schema') }}"
      threads: "{{ env_var('DBT_THREADS', '4') | as_number }}"
      # Fail fast (seconds) when the host is unreachable instead of hanging.
      connect_timeout: 10
""")

REGISTRATION = string.Template("""\
# $name: registered by `make adopt` (tools/adopt.py). Yours to edit; see the README, "Use your own dbt project".
projects:
  $name:
    project_dir: dbt/$name
    profile: $profile
    # The schema dbt builds into (POSTGRES_SCHEMA for the container modes).
    target_schema: $name
    dags:
      # One DAG per enabled execution mode, id ${name}_<mode>, building every node on dags.schedule.
      - id: "{project}_{mode}"
      # More DAGs of this project, for example an hourly slice and a downstream on its marts:
      # - id: ${name}_hourly
      #   select: ["tag:hourly"]
      #   schedule: "@hourly"
      # - id: ${name}_finance
      #   $selector_line# a selector of the project's selectors.yml
      #   $schedule_line# runs when that model is rebuilt
""")


def copy_project(source: Path, staging: Path, with_profile: bool) -> None:
    def left_out(folder: str, names: list[str]) -> set[str]:
        skipped = {".git"} & set(names)
        if "dbt_project.yml" in names:  # the project or a package in it: its build output stays behind
            skipped |= BUILD_OUTPUT & set(names)
        if not with_profile and Path(folder) == source:
            skipped |= {"profiles.yml"} & set(names)  # not even staged: it may hold a password
        return skipped

    shutil.copytree(source, staging, ignore=left_out, dirs_exist_ok=True)


def macro_folders(project_dir: Path) -> list[Path]:
    """The project's own macro paths (dbt's default: macros/)."""
    config = yaml.safe_load((project_dir / "dbt_project.yml").read_text()) or {}
    return [project_dir / folder for folder in config.get("macro-paths") or ["macros"]]


def macro_files(project_dir: Path) -> list[Path]:
    return sorted(path for folder in macro_folders(project_dir) if folder.is_dir() for path in folder.rglob("*.sql"))


def add_schema_macro(project_dir: Path) -> Path | None:
    """Give the project the blueprint's postgres__create_schema unless it defines its own: the
    copy is refreshed on every adoption, the team's own override is never replaced."""
    theirs = [path for path in macro_files(project_dir) if path.name != SCHEMA_MACRO.name]
    if any(OWN_SCHEMA_MACRO.search(path.read_text(errors="replace")) for path in theirs):
        return None
    dest = macro_folders(project_dir)[0] / SCHEMA_MACRO.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SCHEMA_MACRO, dest)
    return dest


@contextmanager
def parse_schema(schema: str) -> Iterator[None]:
    """The manifest records each node's schema, which must be the registered target schema; a
    POSTGRES_SCHEMA left in the caller's shell would otherwise win over parse_project's `schema`."""
    saved = os.environ.get("POSTGRES_SCHEMA")
    os.environ["POSTGRES_SCHEMA"] = schema
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("POSTGRES_SCHEMA", None)
        else:
            os.environ["POSTGRES_SCHEMA"] = saved


def first_error(output: str) -> str:
    """What dbt said went wrong: the lines after its "Encountered an error:", up to any traceback."""
    lines = [re.sub(r"^(\x1b\[\d+m)?\d\d:\d\d:\d\d\s+", "", line).strip() for line in output.splitlines()[1:]]
    marker = next((i for i, line in enumerate(lines) if line.startswith("Encountered an error")), None)
    detail = lines[marker + 1 :] if marker is not None else lines[-1:]
    if "Traceback (most recent call last):" in detail:
        detail = detail[: detail.index("Traceback (most recent call last):")]
    return " ".join(line for line in detail if line)[:300] or "no message"


def dbt_refusal(output: str, plan: Plan) -> AdoptRefused:
    verb = "dbt deps" if output.startswith("`dbt deps`") else "dbt parse"
    if verb == "dbt deps" and plan.remote_packages:
        return AdoptRefused(
            f"`dbt deps` could not install {', '.join(plan.remote_packages)}: hub and git packages need network "
            "at manifest time",
            "run `make adopt` where hub.getdbt.com (and your git host) is reachable; it installs them in "
            f"dbt/{plan.name}/dbt_packages/, which `make manifest` then reuses offline",
        )
    return AdoptRefused(
        f"`{verb}` failed: {first_error(output)}", f"fix the project (`{verb}` in it shows all of it), then adopt again"
    )


def build_in_staging(plan: Plan, root: Path, dbt: Path) -> Path:
    """The project, its profile, packages and manifest, in a folder next to dbt/<name>/; removed on failure."""
    staging = Path(tempfile.mkdtemp(prefix=f".adopt-{plan.name}-", dir=root / "dbt"))
    try:
        copy_project(plan.source, staging, with_profile=plan.keep_profile)
        if not plan.keep_profile:
            profile = PROFILE.substitute(profile=plan.profile, target=plan.target, schema=plan.name)
            (staging / "profiles.yml").write_text(profile)
        add_schema_macro(staging)
        with parse_schema(plan.name):
            parse_project(staging, dbt, schema=plan.name)
    except RuntimeError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise dbt_refusal(str(error), plan) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def relink_local_packages(project_dir: Path, staging: Path) -> None:
    """`dbt deps` links a local package by absolute path, here into the staging folder that is now
    dbt/<name>/. Relative links also survive moving or copying the repository; the manifest itself
    records only project-relative paths, so it needs no second parse."""
    installed = project_dir / "dbt_packages"
    for link in installed.iterdir() if installed.is_dir() else ():
        target = Path(os.readlink(link)) if link.is_symlink() else None
        if target and target.is_absolute() and target.is_relative_to(staging):
            link.unlink()
            link.symlink_to(os.path.relpath(project_dir / target.relative_to(staging), installed))


def registration_text(plan: Plan) -> str:
    schedule = f"schedule: {{assets: [{plan.name}.<model>]}}"
    width = len(schedule) + 4  # the two example comments line up
    text = REGISTRATION.substitute(
        name=plan.name,
        profile=plan.profile,
        selector_line="selector: finance".ljust(width),
        schedule_line=schedule.ljust(width),
    )
    if plan.selectors:
        text += f"      # This project's selectors (selectors.yml): {', '.join(plan.selectors)}.\n"
    return text


def register(root: Path, plan: Plan) -> bool:
    """Write config/projects/<name>.yaml unless it exists (the checks made sure it registers dbt/<name>)."""
    path = root / REGISTRATIONS / f"{plan.name}.yaml"
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(registration_text(plan))
    return True


def install(staging: Path, plan: Plan, root: Path) -> bool:
    """Swap the staged project in as dbt/<name>/ and register it; the old folder comes back on failure."""
    aside = Path(tempfile.mkdtemp(prefix=f".adopt-{plan.name}-old-", dir=root / "dbt"))
    previous = aside / plan.name
    if plan.dest.exists():
        plan.dest.rename(previous)
    try:
        staging.rename(plan.dest)
        relink_local_packages(plan.dest, staging)
        registered = register(root, plan)
    except BaseException:
        for leftover in (staging, plan.dest):
            shutil.rmtree(leftover, ignore_errors=True)
        if previous.exists():
            previous.rename(plan.dest)
        shutil.rmtree(aside, ignore_errors=True)
        raise
    shutil.rmtree(aside)
    return registered


def counted(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def manifest_contents(manifest_path: Path) -> tuple[str, list[str]]:
    """Node counts as one phrase, and the source tables (schema.table) the project reads."""
    manifest = json.loads(manifest_path.read_text())
    nodes = Counter(node["resource_type"] for node in manifest["nodes"].values())
    sources = sorted(f"{source['schema']}.{source['identifier']}" for source in manifest["sources"].values())
    counts = [counted(nodes[kind], kind) for kind in ("model", "seed", "snapshot", "test")]
    return ", ".join([*counts, counted(len(sources), "source")]), sources


def schema_macro_report(project_dir: Path, root: Path) -> str:
    ours = [path for path in macro_files(project_dir) if path.name == SCHEMA_MACRO.name]
    if ours:
        return f"added {shown(ours[0], root)} (concurrent tasks create a fresh target schema without a race)"
    return "kept the project's own postgres__create_schema"


def what_was_done(plan: Plan, root: Path, registered: bool, counts: str) -> list[str]:
    dest, registration = shown(plan.dest, root), shown(root / REGISTRATIONS / f"{plan.name}.yaml", root)
    copied = (
        f"{dest} in place (nothing copied)"
        if plan.source == plan.dest
        else f"copied {shown(plan.source, root)} -> {dest} (without target/, logs/, dbt_packages/)"
    )
    if plan.keep_profile:
        profile = f"kept {dest}/profiles.yml ({plan.profile_reason})"
    else:
        profile = f"wrote the blueprint's POSTGRES_* profile to {dest}/profiles.yml ({plan.profile_reason})"
    modes = (blueprint_defaults(root).get("execution") or {}).get("enabled_modes") or []
    dags = ", ".join(f"{plan.name}_{mode}" for mode in modes) or "none (execution.enabled_modes is empty)"
    return [
        f"adopted {plan.name}: {copied}",
        f"profile: {profile}",
        f"registered: {registration}" if registered else f"registration: {registration} exists, left as is",
        f"schema creation: {schema_macro_report(plan.dest, root)}",
        f"manifest: {dest}/target/manifest.json ({counts})",
        f"DAGs: {dags} (one per mode in execution.enabled_modes)",
    ]


def what_is_left(plan: Plan, root: Path, sources: list[str]) -> list[str]:
    lines = [
        "left for you:",
        f"  - the source tables must exist in the warehouse: {', '.join(sources)}"
        if sources
        else "  - nothing must exist in the warehouse first (the project reads no dbt source)",
        "  - `make run` runs each project's local DAG on the embedded PostgreSQL; `make test` runs every test",
    ]
    example = root / REGISTRATIONS / "jaffle_shop.yaml"
    if plan.name != "jaffle_shop" and example.exists():
        lines.append(
            f"  - jaffle_shop is the blueprint's example: hide it with `enabled: false` in {shown(example, root)}"
        )
    return lines


def adopt(path: Path, name: str | None = None, root: Path = REPO_ROOT, dbt: Path = DBT) -> list[str]:
    """Adopt the dbt project at `path` as dbt/<name>/ of the repository at `root`; returns the report."""
    root = root.resolve()
    plan = plan_adoption(path.resolve(), name, root)
    if not dbt.is_file():
        raise AdoptRefused(f"no dbt at {shown(dbt, root)}", "build the virtual environments with `make venvs`")
    staging = build_in_staging(plan, root, dbt)
    registered = install(staging, plan, root)
    counts, sources = manifest_contents(plan.dest / "target" / "manifest.json")
    return what_was_done(plan, root, registered, counts) + what_is_left(plan, root, sources)


def main(argv: list[str] | None = None, root: Path = REPO_ROOT, dbt: Path = DBT) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, help="the folder holding dbt_project.yml")
    parser.add_argument("--name", help="the project's name here (default: its dbt name)")
    args = parser.parse_args(argv)
    try:
        if args.path is None:
            raise AdoptRefused("no project given", "make adopt PROJECT=path/to/dbt_project [NAME=name]")
        print("\n".join(adopt(args.path, args.name, root, dbt)))
    except AdoptRefused as refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
