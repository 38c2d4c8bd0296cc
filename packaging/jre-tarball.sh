#!/usr/bin/env bash
# Builds (or finds in the cache) a Java runtime tarball from the local JDK,
# for agents that have no suitable Java: the schedulers serve it with
# --jre-tarball and every task runs with it as JAVA_HOME.
#
#   jre-tarball.sh
#
# The only line written to stdout is the absolute path of the tarball
# (jre-<version>.tar.gz, one top directory jre-<version>/). Progress goes to
# stderr. See README.md next to this script.
set -euo pipefail

PKG_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "${PKG_HOME}/lib.sh"

# What ZooKeeper, Kafka and Cassandra need (the Java SE platform, JMX, the
# sun.misc.Unsafe they all use, elliptic-curve TLS), plus jcmd and Flight
# Recorder for operators looking into a live JVM. Modules this JDK does not
# have are left out.
readonly JRE_MODULES=(java.se jdk.unsupported jdk.management jdk.management.agent
    jdk.crypto.ec jdk.naming.dns jdk.zipfs jdk.jfr jdk.jcmd)
# The oldest runtime all three services run on (Cassandra 5.0 needs 17).
readonly JRE_MIN_JAVA=17

(($# == 0)) || {
    echo "usage: jre-tarball.sh   (builds from JAVA_HOME, or the JDK of java on PATH)" >&2
    exit 2
}

pkg_require_cmds tar gzip sha256sum flock mktemp
if [[ -n "${JAVA_HOME:-}" && -x "${JAVA_HOME}/bin/java" ]]; then
    jdk="$JAVA_HOME"
elif command -v java >/dev/null 2>&1; then
    jdk="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")"
else
    die "java not found: install a JDK (${JRE_MIN_JAVA}+) or set JAVA_HOME"
fi
[[ -x "${jdk}/bin/jlink" && -d "${jdk}/jmods" ]] ||
    die "${jdk} is not a full JDK (no bin/jlink or jmods/): install a JDK, not a JRE (Debian: openjdk-17-jdk-headless), or set JAVA_HOME"
major="$(pkg_java_major "${jdk}/bin/java")"
((major >= JRE_MIN_JAVA)) || die "JDK ${major} is too old: the services need Java ${JRE_MIN_JAVA} or newer (set JAVA_HOME)"
version="$(sed -n 's/^JAVA_VERSION="\(.*\)"$/\1/p' "${jdk}/release")"
[[ "$version" =~ ^[0-9][0-9A-Za-z._+-]*$ ]] || die "cannot read the JDK's version from ${jdk}/release"

modules=()
for module in "${JRE_MODULES[@]}"; do
    [[ -f "${jdk}/jmods/${module}.jmod" ]] && modules+=("$module")
done
module_list="$(
    IFS=,
    printf '%s' "${modules[*]}"
)"

name="jre-${version}"
cache="$(pkg_cache_dir)"
tarball="${cache}/${name}.tar.gz"
# The same JDK and script give the same runtime; a change to either rebuilds.
recipe="$( (sha256sum "${BASH_SOURCE[0]}" "${PKG_HOME}/lib.sh" "${jdk}/release" | cut -d' ' -f1
    printf '%s\n' "$module_list") | sha256sum | cut -d' ' -f1)"

cache_usable() {
    [[ "${MESOS_DS_REBUILD:-0}" != 1 ]] || return 1
    pkg_verify_sha256 "$tarball" || return 1
    [[ "$(cat "${tarball}.recipe" 2>/dev/null)" == "$recipe" ]]
}

if cache_usable; then
    log "cached: ${tarball}"
    printf '%s\n' "$tarball"
    exit 0
fi

pkg_lock_and_stage "$tarball"

log "linking a Java ${version} runtime from ${jdk}: ${module_list}"
"${jdk}/bin/jlink" --add-modules "$module_list" \
    --strip-debug --no-header-files --no-man-pages --compress=2 \
    --output "${stage}/${name}" >&2
"${stage}/${name}/bin/java" -version >/dev/null 2>&1 || die "the linked runtime does not start"

# Modes independent of the umask: executables keep their bit.
find "${stage}/${name}" -type d -exec chmod 0755 {} +
find "${stage}/${name}" -type f -perm -u+x -exec chmod 0755 {} +
find "${stage}/${name}" -type f ! -perm -u+x -exec chmod 0644 {} +
pkg_reproducible_tar "$stage" "$name" "${stage}/${name}.tar.gz"
pkg_write_sha256 "${stage}/${name}.tar.gz"
pkg_publish "${stage}/${name}.tar.gz" "$tarball" "$recipe"
