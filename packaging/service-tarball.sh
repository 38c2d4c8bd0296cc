#!/usr/bin/env bash
# Builds (or finds in the cache) a distribution tarball for one service.
#
#   service-tarball.sh <zookeeper|kafka|cassandra> [version]
#
# The only line written to stdout is the absolute path of the tarball, so
# callers can do `tarball="$(service-tarball.sh kafka)"`. Progress goes to
# stderr. See README.md next to this script.
set -euo pipefail

PKG_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "${PKG_HOME}/lib.sh"

usage() {
    cat >&2 <<'EOF'
usage: service-tarball.sh <zookeeper|kafka|cassandra> [version]

Assembles <service>-<version>.tar.gz from the Apache jars on Maven Central and
prints its absolute path. The cache directory is
${MESOS_DS_CACHE:-$HOME/.cache/mesos-data-services}/artifacts.
EOF
    exit 2
}

(($# >= 1 && $# <= 2)) || usage
service="$1"
case "$service" in
    zookeeper | kafka | cassandra) ;;
    -h | --help) usage ;;
    *) die "unknown service '${service}' (expected zookeeper, kafka or cassandra)" ;;
esac

# shellcheck source=services/zookeeper.sh
source "${PKG_HOME}/services/${service}.sh"

version="${2:-$SVC_DEFAULT_VERSION}"
# The version ends up in file names and in a generated POM: keep it tame.
[[ "$version" =~ ^[0-9A-Za-z][0-9A-Za-z._-]*$ ]] || die "invalid version '${version}'"

name="${service}-${version}"
cache="$(pkg_cache_dir)"
tarball="${cache}/${name}.tar.gz"

recipe="$(pkg_recipe_hash "$PKG_HOME" "$service")"

# A cached tarball is reusable when its checksum verifies and it was built
# by this same packaging recipe. A tarball without a .recipe file (e.g. one
# copied in from elsewhere) is trusted on its checksum alone.
# MESOS_DS_REBUILD=1 forces a rebuild.
cache_usable() {
    [[ "${MESOS_DS_REBUILD:-0}" != 1 ]] || return 1
    pkg_verify_sha256 "$tarball" || return 1
    [[ ! -f "${tarball}.recipe" || "$(cat "${tarball}.recipe")" == "$recipe" ]]
}

# Fast path: reuse without touching Java or Maven.
if cache_usable; then
    log "cached: ${tarball}"
    printf '%s\n' "$tarball"
    exit 0
fi

pkg_check_toolchain "$SVC_MIN_JAVA"
# Two frameworks asking for the same tarball at once must not interleave
# writes; the second one waits and then takes the finished one.
pkg_lock_and_stage "$tarball"
work="$stage"

started=$SECONDS
log "building ${name} in ${work}"

mkdir -p "${work}/maven"
pkg_write_pom "${work}/maven" "$(svc_pom_deps "$version")" "$(svc_pom_mgmt "$version")"

root="${work}/stage/${name}"
mkdir -p "$root"
pkg_maven_copy_jars "${work}/maven" "${root}/${SVC_LIB_DIR}"

# Our own launchers and default configuration.
cp -R "${PKG_HOME}/files/${service}/." "$root/"

# README.txt records where every jar came from; the resolved list is sorted,
# so it is as reproducible as the jars themselves.
{
    sed -e "s|@SERVICE@|${service}|g" \
        -e "s|@VERSION@|${version}|g" \
        -e "s|@COORDS@|${SVC_MAIN_COORDS}:${version}|g" \
        -e "s|@LIBDIR@|${SVC_LIB_DIR}|g" \
        "${PKG_HOME}/files/README.txt.in"
    printf '\nResolved Maven artifacts (groupId:artifactId:type[:classifier]:version:scope)\n\n'
    grep -E '^ +[^ :]+:[^ :]+:jar:' "${work}/maven/resolved.txt" |
        sed -e 's/^ *//' -e 's/ .*$//' | LC_ALL=C sort
} >"${root}/README.txt"
cp "${PKG_HOME}/files/NOTICE.txt" "${root}/NOTICE.txt"

pkg_normalize_modes "$root" "${SVC_EXECUTABLES[@]}"

log "writing ${name}.tar.gz"
pkg_reproducible_tar "${work}/stage" "$name" "${work}/${name}.tar.gz"
pkg_write_sha256 "${work}/${name}.tar.gz"

log "assembled in $((SECONDS - started)) s"
pkg_publish "${work}/${name}.tar.gz" "$tarball" "$recipe"
