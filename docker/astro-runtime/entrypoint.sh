#!/bin/sh
# As Astro Runtime's entrypoint: `docker run IMAGE scheduler` runs `airflow scheduler`, while a
# command that exists on PATH (bash, python, airflow) runs as given.
set -eu
if [ $# -gt 0 ] && ! command -v "$1" >/dev/null 2>&1; then
  set -- airflow "$@"
fi
exec "$@"
