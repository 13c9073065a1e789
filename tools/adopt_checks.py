"""The checks of `make adopt` (tools/adopt.py): everything that can be known before anything
is written. Each refusal is an AdoptRefused whose message is one line, `<problem>: <fix>`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from include.blueprint.declarations import NAME_PATTERN as PROJECT_NAME
from include.blueprint.manifest import PACKAGE_FILES

REGISTRATIONS = Path("include/blueprint/config/projects")
NAME_PATTERN = re.compile(PROJECT_NAME)
# The blueprint's connection contract: each profile field and the one variable it must read.
CONTRACT = {
    "host": "POSTGRES_HOST",
    "port": "POSTGRES_PORT",
    "user": "POSTGRES_USER",
    "password": "POSTGRES_PASSWORD",
    "dbname": "POSTGRES_DATABASE",
    "schema": "POSTGRES_SCHEMA",
}
FIELD_ALIASES = {"pass": "password", "database": "dbname"}  # dbt-postgres accepts both spellings
SECRET_KEYS = ("password", "pass", "token", "private_key", "private_key_passphrase", "keyfile_json", "client_secret")
ENV_VAR_CALL = re.compile(r"env_var\(\s*['\"]([^'\"]+)['\"]")


class AdoptRefused(Exception):
    """A reason not to adopt, with its fix; printed as `error: <problem>: <fix>`."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(" ".join(f"{problem}: {fix}".split()))  # always one line


@dataclass(frozen=True)
class Plan:
    """What the checks decided; nothing is written before all of it is known."""

    source: Path
    dest: Path
    name: str
    profile: str
    target: str
    keep_profile: bool
    profile_reason: str
    remote_packages: tuple[str, ...]
    selectors: tuple[str, ...]


def shown(path: Path, root: Path) -> str:
    """A path as the user reads it: relative to the repository or the current folder when inside."""
    for base in (root, Path.cwd()):
        if path.is_relative_to(base):
            return str(path.relative_to(base)) or "."
    return str(path)


def read_yaml(path: Path, fix: str) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise AdoptRefused(f"cannot read {path.name} ({reason})", fix) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise AdoptRefused(f"{path.name} is not valid YAML{where}", fix) from None


def read_project(source: Path, root: Path) -> dict[str, Any]:
    usage = "pass the folder that holds dbt_project.yml: make adopt PROJECT=path/to/dbt_project"
    if not source.is_dir():
        raise AdoptRefused(f"{shown(source, root)} is not a folder, so not a dbt project", usage)
    if not (source / "dbt_project.yml").is_file():
        raise AdoptRefused(f"{shown(source, root)} is not a dbt project (no dbt_project.yml)", usage)
    if (root / "dbt").is_relative_to(source):
        raise AdoptRefused(f"{shown(source, root)} holds the blueprint's own dbt/ folder", usage)
    project = read_yaml(source / "dbt_project.yml", "fix dbt_project.yml (`dbt parse` in the project shows it too)")
    if not isinstance(project, dict):
        raise AdoptRefused("dbt_project.yml holds no settings", "give it at least `name:` and `profile:`")
    for key, fix in (("name", "add `name: <project_name>`"), ("profile", "add `profile: <profile_name>`")):
        if not isinstance(project.get(key), str) or not project[key].strip():
            raise AdoptRefused(f"dbt_project.yml has no `{key}`", f"{fix} to dbt_project.yml")
    return project


def blueprint_dbt_version(root: Path) -> Version:
    lock = root / "dbt" / "requirements.lock.txt"
    match = re.search(r"^dbt-core==(\S+)", lock.read_text(), re.MULTILINE) if lock.is_file() else None
    if not match:
        raise AdoptRefused("dbt/requirements.lock.txt pins no dbt-core", "rebuild the dbt lock with `make lock`")
    return Version(match.group(1))


def dbt_specifiers(required: str | list[Any]) -> SpecifierSet:
    """dbt's require-dbt-version (">=1.5.0", "1.5.0", "=1.5.0", comma lists or YAML lists) for packaging."""
    items = required if isinstance(required, list) else [required]
    specifiers = []
    for part in (piece.strip() for item in items for piece in str(item).split(",")):
        if part[:1].isdigit():
            part = f"=={part}"  # dbt reads a bare version as exact
        elif part.startswith("=") and not part.startswith("=="):
            part = f"={part}"  # dbt's exact match is a single "="
        if part:
            specifiers.append(part)
    return SpecifierSet(",".join(specifiers))


def check_dbt_version(project: dict[str, Any], version: Version) -> None:
    required = project.get("require-dbt-version")
    if required is None:
        return
    written = ", ".join(map(str, required)) if isinstance(required, list) else str(required)
    try:
        accepted = dbt_specifiers(required).contains(version, prereleases=True)
    except InvalidSpecifier:
        raise AdoptRefused(
            f"require-dbt-version {written} is not a version range dbt reads", 'write it like [">=1.8.0", "<2.0.0"]'
        ) from None
    if not accepted:
        raise AdoptRefused(
            f"require-dbt-version {written} excludes dbt {version}, the version the blueprint installs "
            "(dbt/requirements.lock.txt)",
            "widen require-dbt-version in dbt_project.yml, or pin a dbt-core it accepts in dbt/requirements.in "
            "and run `make lock`",
        )


def read_profiles(source: Path) -> dict[str, Any] | None:
    path = source / "profiles.yml"
    if not path.is_file():
        return None
    profiles = read_yaml(path, "fix it, or delete it and adopt writes the blueprint's profile")
    return profiles if isinstance(profiles, dict) else {}


def _outputs(profiles: dict[str, Any], profile_name: str) -> dict[str, dict[str, Any]]:
    profile = profiles.get(profile_name)
    outputs = profile.get("outputs") if isinstance(profile, dict) else None
    return {str(name): output for name, output in (outputs or {}).items() if isinstance(output, dict)}


def check_adapter(profiles: dict[str, Any] | None, profile_name: str) -> None:
    """The profile's target output (every output when it names no target) must be postgres."""
    profile = (profiles or {}).get(profile_name)
    target = profile.get("target") if isinstance(profile, dict) else None
    outputs = _outputs(profiles or {}, profile_name)
    for output_name, output in ({target: outputs[target]} if target in outputs else outputs).items():
        if output.get("type") != "postgres":
            raise AdoptRefused(
                f"adapter {output.get('type')} is not supported (profiles.yml, profile {profile_name}, "
                f"output {output_name})",
                "the blueprint runs dbt-postgres only: adopt a project written for PostgreSQL",
            )


def _env_vars(value: Any) -> set[str]:
    return set(ENV_VAR_CALL.findall(value)) if isinstance(value, str) else set()


def _holds_literal_secret(profiles: dict[str, Any]) -> bool:
    outputs = (output for name in profiles for output in _outputs(profiles, name).values())
    return any(
        output.get(key) not in (None, "") and "{{" not in str(output.get(key))
        for output in outputs
        for key in SECRET_KEYS
    )


def _reads_contract(output: dict[str, Any]) -> bool:
    fields = {FIELD_ALIASES.get(key, key): value for key, value in output.items()}
    return all(_env_vars(fields.get(field)) == {variable} for field, variable in CONTRACT.items()) and _env_vars(
        fields.get("threads")
    ) <= {"DBT_THREADS"}


def profile_verdict(profiles: dict[str, Any] | None, profile_name: str, target: str) -> tuple[bool, str]:
    """Keep the project's profiles.yml, or write the blueprint's? With the reason either way."""
    if profiles is None:
        return False, "the project ships none"
    if _holds_literal_secret(profiles):
        return False, "replaces yours: it holds a literal password, and no password goes into the repository"
    output = _outputs(profiles, profile_name).get(target)
    if output is None:
        return (
            False,
            f"replaces yours: its profile {profile_name} has no output {target}, the target the blueprint runs",
        )
    if not _reads_contract(output):
        return False, "replaces yours: it does not read host, port, user, password, dbname and schema from POSTGRES_*"
    return True, "it reads its connection from the POSTGRES_* variables"


def check_packages(source: Path) -> tuple[str, ...]:
    """Local packages must exist inside the project; returns the hub and git ones (they need network)."""
    remote: list[str] = []
    for file_name in PACKAGE_FILES:
        if not (source / file_name).is_file():
            continue
        declared = read_yaml(source / file_name, f"fix {file_name}")
        entries = declared.get("packages") if isinstance(declared, dict) else None
        for entry in (entry for entry in entries or [] if isinstance(entry, dict)):
            if "local" in entry:
                check_local_package(source, file_name, str(entry["local"]))
            else:
                remote.append(str(next((entry[key] for key in ("package", "git", "tarball") if key in entry), "?")))
    return tuple(remote)


def check_local_package(source: Path, file_name: str, declared: str) -> None:
    # The copy in dbt/<name>/ is what the image and every deploy bundle ship: a package outside it
    # would be missing there, so it must live inside the project, referred to by a relative path.
    path = (source / declared).resolve()
    if not path.is_dir():
        raise AdoptRefused(
            f"local package {declared} ({file_name}) does not exist",
            f"fix its path (relative to the project folder), or remove it from {file_name}",
        )
    if Path(declared).is_absolute() or not path.is_relative_to(source.resolve()):
        raise AdoptRefused(
            f"local package {declared} ({file_name}) is not inside the project folder, so dbt/<name>/ and the "
            "image built from it would miss it",
            f"move it into the project (e.g. packages/{path.name}) and declare `local: packages/{path.name}`",
        )


def target_name(project: dict[str, Any], requested: str | None) -> str:
    name = (requested or project["name"]).lower()
    if not NAME_PATTERN.match(name):
        suggestion = re.sub(r"[^a-z0-9_]+", "_", name).lstrip("_0123456789").rstrip("_") or "my_project"
        raise AdoptRefused(
            f"{name!r} cannot name a project here (lowercase letters, digits and _, starting with a letter)",
            f"choose a name: make adopt PROJECT=... NAME={suggestion}",
        )
    return name


def _registrations(root: Path) -> Iterator[tuple[Path, str, Path | None]]:
    """(file, project name, project folder) of every registration in config/projects/."""
    for path in sorted((root / REGISTRATIONS).glob("*.yaml")):
        data = read_yaml(path, f"fix {shown(path, root)} or remove it")
        projects = data.get("projects") if isinstance(data, dict) else None
        for name, project in projects.items() if isinstance(projects, dict) else ():
            folder = project.get("project_dir") if isinstance(project, dict) else None
            yield path, str(name), (root / str(folder)).resolve() if folder else None


def check_registrations(root: Path, name: str, dest: Path) -> None:
    own_file, own_file_registers_us = root / REGISTRATIONS / f"{name}.yaml", False
    for path, registered, folder in _registrations(root):
        where = shown(path, root)
        if registered == name and folder != dest:
            shown_folder = shown(folder, root) if folder else "no folder"
            raise AdoptRefused(
                f"project {name} is already registered for {shown_folder} in {where}",
                "choose another name with NAME=, or remove that registration",
            )
        if registered != name and folder == dest:
            raise AdoptRefused(f"dbt/{name} is already registered as project {registered} in {where}", "use NAME=")
        own_file_registers_us |= path == own_file and registered == name
    if own_file.exists() and not own_file_registers_us:
        raise AdoptRefused(
            f"{shown(own_file, root)} exists and does not register dbt/{name}",
            "choose another name with NAME=, or move that file",
        )


def check_destination(dest: Path, source: Path, project_name: str) -> None:
    """dbt/<name>/ may only be replaced by the same project (re-adopting re-syncs it)."""
    if not dest.exists() or dest == source:
        return
    try:
        existing = (yaml.safe_load((dest / "dbt_project.yml").read_text()) or {}).get("name")
    except (OSError, yaml.YAMLError, AttributeError):
        existing = None
    if existing != project_name:
        what = f"another dbt project ({existing})" if existing else "something that is not this dbt project"
        raise AdoptRefused(
            f"dbt/{dest.name}/ already holds {what}", f"choose another name with NAME=, or remove dbt/{dest.name}/"
        )


def blueprint_defaults(root: Path) -> dict[str, Any]:
    """base.yaml as written (not the settings module): the enabled modes and the profile target."""
    return yaml.safe_load((root / "include" / "blueprint" / "config" / "base.yaml").read_text()) or {}


def plan_adoption(source: Path, requested_name: str | None, root: Path) -> Plan:
    """Every check, in the order a team meets the problems; raises AdoptRefused, writes nothing."""
    project = read_project(source, root)
    check_dbt_version(project, blueprint_dbt_version(root))
    profiles = read_profiles(source)
    check_adapter(profiles, project["profile"])
    remote_packages = check_packages(source)
    name = target_name(project, requested_name)
    dest = root / "dbt" / name
    check_registrations(root, name, dest)
    check_destination(dest, source, project["name"])
    target = str((blueprint_defaults(root).get("dbt") or {}).get("target") or "dev")
    keep_profile, reason = profile_verdict(profiles, project["profile"], target)
    selectors = selector_names(source)
    return Plan(source, dest, name, project["profile"], target, keep_profile, reason, remote_packages, selectors)


def selector_names(source: Path) -> tuple[str, ...]:
    path = source / "selectors.yml"
    declared = read_yaml(path, "fix selectors.yml") if path.is_file() else None
    entries = declared.get("selectors") if isinstance(declared, dict) else None
    return tuple(str(entry["name"]) for entry in entries or [] if isinstance(entry, dict) and "name" in entry)
