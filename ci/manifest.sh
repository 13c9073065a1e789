#!/usr/bin/env bash
# `dbt docs generate` with no credentials and no database, for every registered project: writes
# dbt/<project>/target/manifest.json (what the DAGs render from) and the dbt docs site, and copies
# them to the CI artifacts as <artifacts>/<project>/{manifest.json,index.html,catalog.json}, with
# the manifest's SHA-256 (the docs folder is what [cosmos] dbt_docs_projects can point at).
#   bash ci/manifest.sh        (CI_ARTIFACTS_DIR, default .local/ci)
set -euo pipefail
cd "$(dirname "$0")/.."
artifacts=${CI_ARTIFACTS_DIR:-.local/ci}
py=.venvs/airflow/bin/python
[ -x "$py" ] || bash scripts/bootstrap.sh >&2
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

# No warehouse credentials reach dbt: tools.manifest fills inert placeholders instead.
# It prints "<project>: wrote <path>" for each registered project.
out=$(env -u POSTGRES_HOST -u POSTGRES_USER -u POSTGRES_PASSWORD -u POSTGRES_DATABASE "$py" -m tools.manifest --force)
while read -r name _ manifest; do
  name=${name%:}
  [ -f "$manifest" ] || { echo "error: dbt parse of $name reported '$manifest', but wrote no manifest" >&2; exit 1; }
  mkdir -p "$artifacts/$name"
  cp "$manifest" "$artifacts/$name/manifest.json"
  cp "$(dirname "$manifest")/index.html" "$(dirname "$manifest")/catalog.json" "$artifacts/$name/"
  "$py" - "$artifacts/$name/manifest.json" <<'PY'
import hashlib
import json
import sys
from collections import Counter

path = sys.argv[1]
data = open(path, "rb").read()
manifest = json.loads(data)
kinds = Counter(node["resource_type"] for node in manifest["nodes"].values())
counts = ", ".join(f"{count} {kind}s" for kind, count in sorted(kinds.items()))
version = manifest["metadata"]["dbt_version"]
print(f"manifest: {path} (dbt {version}; {counts}; sha256 {hashlib.sha256(data).hexdigest()[:16]})")
PY
done <<<"$out"
