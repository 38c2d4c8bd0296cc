#!/usr/bin/env bash
# Builds the release tarball: the frameworks' binaries (scheduler and CLI in
# one) and the executor, reproducibly, with a .sha256 file.
#
#   packaging/release.sh [--services] [--out DIR] [--bin-dir DIR]
#
#   --services     also build the Kafka, ZooKeeper and Cassandra tarballs
#                  (service-tarball.sh) and copy them with their .sha256 into DIR
#   --out DIR      where to write (default: dist/ in the repository)
#   --bin-dir DIR  package binaries already built in DIR instead of building
#                  (DIR holds <framework>-mesos and service-executor)
#
# Writes DIR/mesos-data-services-<version>-linux-x86_64.tar.gz and its
# .sha256, and prints the tarball's path on stdout (progress on stderr).
set -euo pipefail

PKG_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "${PKG_HOME}/.." && pwd)"
# shellcheck source=lib.sh
source "${PKG_HOME}/lib.sh"

out="${ROOT}/dist"
bin_dir=""
services=no
while (($# > 0)); do
    case "$1" in
        --services) services=yes ;;
        --out) out="${2:?--out needs a directory}"; shift ;;
        --bin-dir) bin_dir="${2:?--bin-dir needs a directory}"; shift ;;
        -h | --help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
    shift
done

pkg_require_cmds cargo tar gzip sha256sum git
version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' "${ROOT}/Cargo.toml")"
[[ -n "$version" ]] || die "no version in [workspace.package] of ${ROOT}/Cargo.toml"
arch="$(uname -m)"
[[ "$arch" == x86_64 ]] || die "this script builds linux-x86_64 releases; this machine is ${arch}"

# Every archive member gets this time: SOURCE_DATE_EPOCH if set, else the
# last commit's time, so the same commit always gives the same archive.
if [[ -z "${SOURCE_DATE_EPOCH:-}" ]]; then
    SOURCE_DATE_EPOCH="$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null)" ||
        die "not a git checkout: set SOURCE_DATE_EPOCH"
fi
export SOURCE_DATE_EPOCH

# The frameworks in the workspace (a framework joins the release by joining
# the workspace's members).
frameworks=()
for name in kafka zookeeper cassandra; do
    if grep -q "^ *\"frameworks/${name}\"" "${ROOT}/Cargo.toml"; then
        frameworks+=("${name}-mesos")
    fi
done
((${#frameworks[@]} > 0)) || die "no framework crate in the workspace"

target="${CARGO_TARGET_DIR:-${ROOT}/target}"
if [[ -z "$bin_dir" ]]; then
    # Paths of the build machine must not end up in the binaries.
    remap="--remap-path-prefix=${ROOT}=/build --remap-path-prefix=${CARGO_HOME:-${HOME}/.cargo}=/cargo"
    export RUSTFLAGS="${RUSTFLAGS:+${RUSTFLAGS} }${remap}"
    packages=()
    for bin in "${frameworks[@]}"; do packages+=(-p "$bin"); done
    log "building ${frameworks[*]} (release) for ${version}"
    (cd "$ROOT" && cargo build --release --locked "${packages[@]}")
    # The executor has its own size-optimised profile when the workspace defines one.
    if grep -q '^\[profile\.executor\]' "${ROOT}/Cargo.toml"; then
        log "building service-executor (profile executor)"
        (cd "$ROOT" && cargo build --profile executor --locked -p service-executor)
        executor="${target}/executor/service-executor"
    else
        log "building service-executor (release)"
        (cd "$ROOT" && cargo build --release --locked -p service-executor)
        executor="${target}/release/service-executor"
    fi
    bin_dir="${target}/release"
else
    executor="${bin_dir}/service-executor"
fi
[[ -x "$executor" ]] || die "no executor binary at ${executor}"

name="mesos-data-services-${version}-linux-x86_64"
work="$(mktemp -d)"
trap 'rm -rf -- "$work"' EXIT
root="${work}/${name}"
mkdir -p "${root}/bin" "${root}/marathon"
for bin in "${frameworks[@]}"; do
    [[ -x "${bin_dir}/${bin}" ]] || die "no ${bin} in ${bin_dir}"
    cp "${bin_dir}/${bin}" "${root}/bin/"
done
# The schedulers look for the executor next to themselves.
cp "$executor" "${root}/bin/service-executor"
cp "${PKG_HOME}"/marathon/*.json "${root}/marathon/"
cp "${PKG_HOME}/files/NOTICE.txt" "${root}/NOTICE.txt"
commit="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
{
    printf 'mesos-data-services %s (linux-x86_64), commit %s\n\n' "$version" "$commit"
    printf 'bin/        the frameworks (scheduler and CLI in one binary) and service-executor\n'
    printf 'marathon/   Marathon app definitions that launch the schedulers from this tarball\n\n'
    printf 'Binaries (sha256):\n'
    (cd "$root" && sha256sum bin/*)
} >"${root}/README.txt"

executables=()
for bin in "${root}"/bin/*; do executables+=("bin/$(basename "$bin")"); done
pkg_normalize_modes "$root" "${executables[@]}"

mkdir -p "$out"
out="$(cd "$out" && pwd)"
tarball="${out}/${name}.tar.gz"
log "writing ${tarball}"
tar -C "$work" \
    --sort=name \
    --owner=0 --group=0 --numeric-owner \
    --mtime="@${SOURCE_DATE_EPOCH}" \
    --format=gnu \
    -cf - "$name" | gzip -n -9 >"${work}/${name}.tar.gz"
mv -f -- "${work}/${name}.tar.gz" "$tarball"
pkg_write_sha256 "$tarball"
log "$(cat "${tarball}.sha256")"

if [[ "$services" == yes ]]; then
    for service in kafka zookeeper cassandra; do
        built="$("${PKG_HOME}/service-tarball.sh" "$service")"
        cp -f -- "$built" "${built}.sha256" "$out/"
        log "$(cat "${built}.sha256")"
    done
fi
printf '%s\n' "$tarball"
