#!/usr/bin/env bash
# apt-get update, then apt-get install "$@", one caller at a time on this machine: the test
# suite's workers may each need a package at once (Docker, Chromium, Redis), and apt-get fails on
# a held lock rather than wait for it. Output goes to stderr; needs root, as apt-get does.
set -euo pipefail
lock_dir=/run/lock
[ -d "$lock_dir" ] && [ -w "$lock_dir" ] || lock_dir=/var/lock
exec 9>"$lock_dir/airflow-dbt-blueprint-apt.lock"
flock --timeout 900 9 || { echo "error: another apt-get install held the lock for 15 minutes" >&2; exit 1; }
{
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 "$@" >/dev/null
} >&2
