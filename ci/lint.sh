#!/usr/bin/env bash
# Every linter, check-only: nothing is ever rewritten. Exits 1 when any linter finds anything,
# after running them all, and names the ones that failed.
#   bash ci/lint.sh                    every linter on the whole repository (make lint, CI)
#   bash ci/lint.sh NAME [FILE...]     one linter, on FILEs when given (what pre-commit runs)
# Linters: ruff, ruff-format, sqlfluff, yamllint, hadolint, shellcheck, actionlint, zizmor,
# check-jsonschema, pre-commit-config. Their settings live in pyproject.toml ([tool.ruff]),
# .sqlfluff, .yamllint.yaml, .hadolint.yaml and here; the tools come from requirements/lint.in.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${LINT_BIN:-.venvs/airflow/bin}
[ -x "$BIN/ruff" ] && [ -x "$BIN/sqlfluff" ] || bash scripts/bootstrap.sh >&2
ALL=(ruff ruff-format sqlfluff yamllint hadolint shellcheck actionlint zizmor check-jsonschema pre-commit-config)

# The repository's files (tracked, plus new ones not ignored), existing, matching an ERE.
repo_files() {
  local pattern=$1
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files --cached --others --exclude-standard | grep -E "$pattern" | while IFS= read -r f; do
      [ -f "$f" ] && printf '%s\n' "$f"
    done | sort -u
  else
    find . -path ./.git -prune -o -path ./.venvs -prune -o -path ./.local -prune -o -type f -print \
      | sed 's|^\./||' | grep -E "$pattern" | sort
  fi
}

# Shell scripts: *.sh, and extensionless files whose first line is a sh or bash shebang.
shell_files() {
  { repo_files '\.sh$'
    repo_files '(^|/)[^./]+$' | while IFS= read -r f; do
      head -n 1 "$f" 2>/dev/null | grep -qE '^#!.*[/ ](ba)?sh$' && printf '%s\n' "$f"
    done; } | sort -u
}

WORKFLOWS='^\.github/workflows/[^/]+\.ya?ml$'

# files_for NAME: the files a linter checks on a whole-repository run.
files_for() {
  case $1 in
    ruff | ruff-format) echo . ;;
    sqlfluff) repo_files '^(dbt|tools/adopt_files)/.*\.sql$' ;;
    yamllint) repo_files '(\.ya?ml|^\.yamllint)$' ;;
    hadolint) repo_files '(^|/)(Dockerfile(\.[^/]+)?|[^/]+\.[Dd]ockerfile)$' ;;
    shellcheck) shell_files ;;
    actionlint | zizmor | check-jsonschema) repo_files "$WORKFLOWS" ;;
    pre-commit-config) repo_files '^\.pre-commit-config\.yaml$' ;;
  esac
}

# run_linter NAME FILE...: the one place each linter's command line is written.
run_linter() {
  local name=$1
  shift
  case $name in
    ruff) "$BIN/ruff" check --no-fix --force-exclude "$@" ;;
    ruff-format) "$BIN/ruff" format --check --force-exclude "$@" ;;
    sqlfluff) "$BIN/sqlfluff" lint --config .sqlfluff --disable-progress-bar "$@" ;;
    yamllint) "$BIN/yamllint" --strict --format parsable "$@" ;;
    hadolint) "$BIN/hadolint" --config .hadolint.yaml "$@" ;;
    # Warnings and errors fail; shellcheck's info and style notes are advice.
    shellcheck) "$BIN/shellcheck" --severity=warning "$@" ;;
    # actionlint runs shellcheck on every `run:` block (pyflakes is not installed: no Python steps).
    actionlint) "$BIN/actionlint" -no-color -oneline -shellcheck="$BIN/shellcheck" -pyflakes= "$@" ;;
    # --offline: the audits that need GitHub's API (e.g. known-vulnerable action versions) are
    # skipped; everything else (pinning, permissions, injection, credentials) runs.
    zizmor)
      if [ ! -x "$BIN/zizmor" ]; then
        echo "zizmor is not installed for this platform: skipped"
        return 0
      fi
      "$BIN/zizmor" --offline --no-progress --color never "$@"
      ;;
    check-jsonschema)
      "$BIN/check-jsonschema" --builtin-schema vendor.github-workflows "$@" \
        && "$BIN/check-jsonschema" --builtin-schema custom.github-workflows-require-timeout "$@"
      ;;
    pre-commit-config) "$BIN/pre-commit" validate-config "$@" ;;
    *)
      echo "error: unknown linter '$name'; known: ${ALL[*]}" >&2
      return 2
      ;;
  esac
}

if [ $# -gt 0 ]; then
  name=$1
  shift
  [[ " ${ALL[*]} " == *" $name "* ]] || { echo "error: unknown linter '$name'; known: ${ALL[*]}" >&2; exit 2; }
  if [ $# -eq 0 ]; then
    mapfile -t files < <(files_for "$name")
    set -- "${files[@]}"
  fi
  [ $# -gt 0 ] || exit 0
  run_linter "$name" "$@"
  exit
fi

failed=()
start_all=$SECONDS
for name in "${ALL[@]}"; do
  mapfile -t files < <(files_for "$name")
  if [ "${#files[@]}" -eq 0 ]; then
    printf 'lint: %-18s no files\n' "$name"
    continue
  fi
  start=$SECONDS
  if output=$(run_linter "$name" "${files[@]}" 2>&1); then
    printf 'lint: %-18s ok (%d s)\n' "$name" $((SECONDS - start))
  else
    printf 'lint: %-18s FAILED\n' "$name"
    printf '%s\n' "$output" | sed 's/^/    /'
    failed+=("$name")
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "lint: ${#failed[@]} linter(s) failed: ${failed[*]} (checks only: fix the findings above, then rerun \`make lint\`)" >&2
  exit 1
fi
echo "lint: all ${#ALL[@]} linters passed in $((SECONDS - start_all)) s"
