#!/usr/bin/env bash
# Download the wheels of fully pinned requirements files for the Python, C library and CPU of a
# base image, so `pip install --no-index` works inside a build that cannot reach PyPI.
#   bash ci/wheelhouse.sh BASE_IMAGE REQUIREMENTS...   -> prints the wheelhouse folder (stdout)
# The files may pin different versions of one package (each is downloaded on its own). The folder,
# .local/wheelhouse/py<X.Y>-<arch>-<hash of the files>, is reused while they are unchanged. Needs a Docker engine (to ask the base image which Python and glibc it has).
set -euo pipefail
cd "$(dirname "$0")/.."
base=$1
shift

read -r py_version glibc < <(docker run --rm --network none --entrypoint python3 "$base" -c \
  'import platform, sys; print("%d.%d" % sys.version_info[:2], platform.libc_ver()[1])')
[ -n "${glibc:-}" ] || { echo "error: cannot run python3 in the base image $base" >&2; exit 1; }
case $(docker version -f '{{.Server.Arch}}') in
  amd64) arch=x86_64 ;; arm64) arch=aarch64 ;; *) arch=$(uname -m) ;;
esac
wheelhouse=.local/wheelhouse/py$py_version-$arch-$(cat "$@" | sha256sum | cut -c1-12)
if [ ! -f "$wheelhouse/.complete" ]; then
  echo "wheelhouse: downloading the wheels of $* for CPython $py_version ($arch, glibc $glibc)" >&2
  platforms=(--platform "manylinux2014_$arch")
  for minor in $(seq 17 "${glibc#2.}"); do platforms+=(--platform "manylinux_2_${minor}_$arch"); done
  pip=(.venvs/tools/bin/python -m pip)
  [ -x .venvs/tools/bin/python ] || pip=(python3 -m pip)
  rm -rf "$wheelhouse" && mkdir -p "$wheelhouse"
  for requirements in "$@"; do
    "${pip[@]}" download --quiet --no-deps --only-binary=:all: --python-version "$py_version" \
      --implementation cp --abi "cp${py_version/./}" --abi abi3 --abi none "${platforms[@]}" \
      -r "$requirements" -d "$wheelhouse" 2> >(grep -v 'is ignored: it is neither' >&2)
  done
  touch "$wheelhouse/.complete"
fi
echo "$wheelhouse"
