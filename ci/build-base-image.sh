#!/usr/bin/env bash
# Build a local stand-in for the official python:3.11-slim-bookworm image where Docker Hub cannot
# be reached: Debian bookworm (minbase) + Debian's Python 3.11 with venv (pip comes with ensurepip), made with
# debootstrap from the Debian mirror apt already uses, then `docker import`ed.
#   bash ci/build-base-image.sh [tag]     (root; default tag below; about a minute)
# The dbt image only needs `python3` with the venv module on PATH, and `useradd`.
set -euo pipefail
tag=${1:-airflow-dbt-blueprint/python-base:3.11-bookworm}
suite=bookworm
fail() { echo "error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "debootstrap needs root: run as root, or pass BASE_IMAGE=<an image you have>"
if ! command -v debootstrap >/dev/null 2>&1; then
  echo "build-base-image: installing debootstrap" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

# The mirror apt uses (deb822 .sources or a one-line sources.list), unless DEBIAN_MIRROR is set.
mirror=${DEBIAN_MIRROR:-$(
  { sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null
    sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\)[[:space:]]\+bookworm[[:space:]].*/\2/p' \
      /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
  } | grep -v -- '-security' | head -n 1 || true
)}
mirror=${mirror:-http://deb.debian.org/debian}

rootfs=$(mktemp -d /tmp/python-base-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "build-base-image: debootstrap $suite from $mirror" >&2
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,passwd \
  "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || { tail -n 20 "$rootfs.log" >&2; fail "debootstrap failed"; }
rm -f "$rootfs.log"

# Slim it the way the official slim images are: no apt lists or caches, no docs but copyrights.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
  "$rootfs"/var/log/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/tmp/*
find "$rootfs"/usr/share/doc -type f ! -name copyright -delete
find "$rootfs"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +

tar --numeric-owner -C "$rootfs" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --change "LABEL org.opencontainers.image.description=\"Debian $suite minbase + python3 (debootstrap), stand-in for python:3.11-slim-bookworm\"" \
  - "$tag" >/dev/null
echo "build-base-image: $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))" >&2
