#!/bin/sh
# `dbt` in the dbt runtime image: its ENTRYPOINT and the `dbt` on PATH, so it also applies where a
# platform replaces the entrypoint (ACI's command, Cosmos's Kubernetes `bash -c "dbt ..."`).
# Before it runs the real dbt (/opt/dbt/bin/dbt) it
#   1. drops a leading "dbt": Cosmos passes `dbt build ...`, which must not become `dbt dbt build`;
#   2. stops a command that connects when a POSTGRES_* variable is missing, naming it (dbt would
#      send the literal "{{ env_var('POSTGRES_PASSWORD') }}" as the password); commands that do
#      not connect (--version, parse, ls, deps, clean) get placeholders for the others instead;
#   3. re-keys the partial parse baked into the image to this container's host, port and user.
#      dbt hashes them with the profile and would re-parse the whole project, though where it
#      connects cannot change the parse; database and schema can, so they must match the build's.
# `dbt --bake-partial-parse` (image build only) runs `dbt parse` and records what step 3 needs.
set -eu
if [ "${1:-}" = dbt ]; then shift; fi

kind=none
for arg in "$@"; do
  case $arg in
    parse | ls | list | deps | clean | init) kind=offline && break ;;
    build | run | test | seed | snapshot | compile | debug | show | source | run-operation | docs | retry | clone)
      kind=online && break ;;
  esac
done
if [ "$kind" = online ]; then
  missing=
  for name in POSTGRES_HOST POSTGRES_USER POSTGRES_PASSWORD POSTGRES_DATABASE; do
    eval "value=\${$name:-}"
    [ -n "$value" ] || missing="$missing $name"
  done
  if [ -n "$missing" ]; then
    echo "error: \`dbt $arg\` connects to PostgreSQL, but these variables are not set:$missing." \
      "Pass POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DATABASE and POSTGRES_SCHEMA." >&2
    exit 2
  fi
elif [ "$kind" = offline ]; then
  # (a missing password is harmless here: dbt does not fail on it, and these never connect)
  export POSTGRES_HOST="${POSTGRES_HOST:-offline.invalid}" POSTGRES_USER="${POSTGRES_USER:-offline}" \
    POSTGRES_DATABASE="${POSTGRES_DATABASE:-offline}"
fi

if [ "$kind" != none ] || [ "${1:-}" = --bake-partial-parse ]; then
  /opt/dbt/bin/python -I - "$@" <<'PYTHON' || [ "${1:-}" != --bake-partial-parse ] || exit 1
import hashlib, json, os, pprint, re, sys

STATE = os.path.join("target", "partial_parse.profile.json")
ENV_KEYS = {"POSTGRES_HOST": "host", "POSTGRES_PORT": "port", "POSTGRES_USER": "user",
            "POSTGRES_DATABASE": "database", "POSTGRES_SCHEMA": "schema"}
MOVABLE = {"host", "port", "user"}  # where and as whom dbt connects: not part of the parse result


def profile_hash(info):  # what dbt's ManifestLoader.build_manifest_state_check computes
    return hashlib.sha256(pprint.pformat(sorted(tuple(item) for item in info)).encode()).hexdigest()


def bake():
    from dbt.cli.main import dbtRunner
    from dbt.parser.manifest import ManifestLoader

    captured, original = [], ManifestLoader.build_manifest_state_check
    def capture(loader):
        captured[:] = loader.root_project.credentials.connection_info()
        return original(loader)
    ManifestLoader.build_manifest_state_check = capture
    if not dbtRunner().invoke(["parse"]).success:
        sys.exit("dbt parse failed")
    checksum = profile_hash(captured)
    with open(os.path.join("target", "partial_parse.msgpack"), "rb") as baked:
        if baked.read().count(checksum.encode()) != 1:
            sys.exit("dbt no longer hashes the profile as docker/entrypoint.sh expects: update it")
    with open(os.path.join(os.environ["DBT_PROFILES_DIR"], "profiles.yml")) as profiles:
        names = set(re.findall(r"env_var\(\s*['\"](\w+)", profiles.read())) - {"POSTGRES_PASSWORD"}
    with open(STATE, "w") as state:
        env = {name: os.environ.get(name) for name in sorted(names)}
        json.dump({"checksum": checksum, "connection_info": captured, "env": env}, state, indent=1)


def rekey(args):
    project = os.environ.get("DBT_PROJECT_DIR", ".")
    for flag, value in zip(args, args[1:]):
        project = value if flag == "--project-dir" else project
    with open(os.path.join(project, STATE)) as state_file:
        state = json.load(state_file)
    info = dict(state["connection_info"])
    for name, baked in state["env"].items():
        now, key = os.environ.get(name), ENV_KEYS.get(name)
        if now == baked:
            continue
        if key is None or now is None:
            return  # another variable changed, or a default we cannot see here applies: dbt re-parses
        value = int(now) if key == "port" else now
        if key not in MOVABLE and value != info[key]:
            return  # another database or schema: the parse result differs, dbt must re-parse
        info[key] = value
    checksum, path = profile_hash(info.items()), os.path.join(project, "target", "partial_parse.msgpack")
    with open(path, "rb") as baked_file:
        data = baked_file.read()
    if checksum != state["checksum"] and data.count(state["checksum"].encode()) == 1:
        with open(path + ".rekeyed", "wb") as rekeyed:
            rekeyed.write(data.replace(state["checksum"].encode(), checksum.encode()))
        os.replace(path + ".rekeyed", path)


if sys.argv[1:2] == ["--bake-partial-parse"]:
    bake()
else:
    try:
        rekey(sys.argv[1:])
    except Exception:  # no baked state, read-only project, ...: dbt simply parses in full
        pass
PYTHON
fi
if [ "${1:-}" = --bake-partial-parse ]; then exit 0; fi
exec /opt/dbt/bin/dbt "$@"
