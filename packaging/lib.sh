# shellcheck shell=bash
# Shared helpers for the packaging scripts. Sourced, never executed directly.
#
# Everything here writes diagnostics to stderr only: the entry point promises
# that stdout carries exactly one line (the tarball path), so no helper may
# print to stdout unless its job is to return a value via command substitution.

# The maven-dependency-plugin version is pinned so that the set of copied jars
# does not depend on whichever plugin version Maven's super-POM happens to bind.
readonly PKG_DEPENDENCY_PLUGIN_VERSION="3.8.1"

# Fixed timestamp stamped on every archive member, so rebuilding from the same
# inputs yields byte-identical archives.
readonly PKG_TAR_MTIME="2020-01-01 00:00Z"

log() {
    printf '[packaging] %s\n' "$*" >&2
}

die() {
    printf '[packaging] ERROR: %s\n' "$*" >&2
    exit 1
}

# Root of the artifact cache. MESOS_DS_CACHE relocates the whole cache (for
# example onto a larger disk); "artifacts" keeps room for other cache kinds.
pkg_cache_dir() {
    printf '%s/artifacts\n' "${MESOS_DS_CACHE:-${HOME}/.cache/mesos-data-services}"
}

# Fails unless every named command is on PATH.
pkg_require_cmds() {
    local cmd missing=()
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
    done
    if ((${#missing[@]} > 0)); then
        die "required command(s) not found on PATH: ${missing[*]}"
    fi
}

# Prints the major version of a java binary (8 for "1.8.0_x", 17 for "17.0.x").
pkg_java_major() {
    local java_bin="$1" line ver
    line="$("$java_bin" -version 2>&1 | grep -m1 -E 'version "[^"]+"')" ||
        die "could not determine the version of '${java_bin}'"
    ver="${line#*version \"}"
    ver="${ver%%\"*}"
    case "$ver" in
        1.*) ver="${ver#1.}" ;;
    esac
    printf '%s\n' "${ver%%[.+-]*}"
}

# Checks that java and mvn exist and that the JDK is at least the given major
# version. Maven runs on the same JDK (JAVA_HOME or PATH), so one check covers
# both the build and the smoke tests.
pkg_check_toolchain() {
    local min_java="$1" java_bin major
    pkg_require_cmds mvn tar gzip sha256sum flock mktemp
    if [[ -n "${JAVA_HOME:-}" && -x "${JAVA_HOME}/bin/java" ]]; then
        java_bin="${JAVA_HOME}/bin/java"
    elif command -v java >/dev/null 2>&1; then
        java_bin="java"
    else
        die "java not found: install a JDK (${min_java}+) or set JAVA_HOME"
    fi
    major="$(pkg_java_major "$java_bin")"
    if ((major < min_java)); then
        die "JDK ${major} is too old: this service needs JDK ${min_java} or newer (set JAVA_HOME)"
    fi
}

# Writes a throwaway pom.xml that depends on the given artifacts.
#   $1  directory to write pom.xml into
#   $2  <dependencies> body (XML)
#   $3  optional <dependencyManagement> body (XML), e.g. an imported BOM
pkg_write_pom() {
    local dir="$1" deps="$2" mgmt="${3:-}"
    {
        cat <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 https://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.packaging</groupId>
  <artifactId>service-tarball</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
EOF
        if [[ -n "$mgmt" ]]; then
            printf '  <dependencyManagement>\n    <dependencies>\n%s\n    </dependencies>\n  </dependencyManagement>\n' "$mgmt"
        fi
        printf '  <dependencies>\n%s\n  </dependencies>\n' "$deps"
        cat <<EOF
  <build>
    <pluginManagement>
      <plugins>
        <plugin>
          <groupId>org.apache.maven.plugins</groupId>
          <artifactId>maven-dependency-plugin</artifactId>
          <version>${PKG_DEPENDENCY_PLUGIN_VERSION}</version>
        </plugin>
      </plugins>
    </pluginManagement>
  </build>
</project>
EOF
    } >"${dir}/pom.xml"
}

# Formats one <dependency> element. Arguments: groupId artifactId version
# [classifier]. An empty version leaves it to dependencyManagement.
pkg_dep() {
    local g="$1" a="$2" v="${3:-}" c="${4:-}"
    printf '    <dependency><groupId>%s</groupId><artifactId>%s</artifactId>' "$g" "$a"
    [[ -n "$v" ]] && printf '<version>%s</version>' "$v"
    [[ -n "$c" ]] && printf '<classifier>%s</classifier>' "$c"
    printf '</dependency>\n'
}

# Resolves the pom in $1 and copies every compile+runtime jar into $2.
# ~/.m2 (or whatever Maven is configured with) is the download cache, so a
# second build needs no network at all.
#
# dependency:list runs in the same Maven invocation so that we can prove no
# two artifacts were flattened onto the same file name in lib/.
pkg_maven_copy_jars() {
    local workdir="$1" dest="$2" listing expected copied attempt ok=no
    local -a extra=()
    listing="${workdir}/resolved.txt"
    # MESOS_DS_MAVEN_ARGS passes extra Maven options, e.g. "-s mirror-settings.xml"
    # or "-o" for a strictly offline build from a pre-filled ~/.m2.
    # shellcheck disable=SC2206  # a whitespace-separated list of options
    extra=(${MESOS_DS_MAVEN_ARGS:-})
    mkdir -p "$dest"
    log "resolving dependencies with Maven (first run downloads into ~/.m2)"
    # Maven remembers a failed download in ~/.m2 and refuses to retry it for
    # a day; the second attempt adds -U so a transient network error does not
    # stick.
    for attempt in "" -U; do
        if (cd "$workdir" && mvn -q -B -Dstyle.color=never ${attempt:+"$attempt"} "${extra[@]}" \
            dependency:list dependency:copy-dependencies \
            -DincludeScope=runtime \
            -DoutputFile="$listing" -DoutputAbsoluteArtifactFilename=false \
            -Dsort=true \
            -DoutputDirectory="$dest" \
            -Dmdep.useRepositoryLayout=false \
            -Dmdep.copyPom=false >"${workdir}/mvn.log" 2>&1); then
            ok=yes
            break
        fi
        [[ -n "$attempt" ]] || log "Maven failed; retrying once with -U"
    done
    if [[ "$ok" != yes ]]; then
        # Strip Maven's colour codes; grep also restores the final newline.
        sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^/[mvn] /' "${workdir}/mvn.log" |
            grep -v '^\[mvn\] *$' >&2 || true
        die "Maven could not resolve the artifacts (see [mvn] lines above)"
    fi
    # Lines of the listing look like "   group:artifact:jar[:classifier]:version:scope".
    expected="$(grep -cE '^ +[^ :]+:[^ :]+:jar:' "$listing" || true)"
    copied="$(find "$dest" -maxdepth 1 -name '*.jar' | wc -l)"
    if [[ "$expected" != "$copied" ]]; then
        die "Maven resolved ${expected} jars but ${copied} landed in lib/ (file name clash?)"
    fi
    log "copied ${copied} jars"
}

# Puts the given tree into a canonical state: no group/other write bits and
# exec bits only where we asked for them, independent of the caller's umask.
#   $1  root directory
#   $@  paths (relative to root) that must be executable
pkg_normalize_modes() {
    local root="$1" rel
    shift
    find "$root" -type d -exec chmod 0755 {} +
    find "$root" -type f -exec chmod 0644 {} +
    for rel in "$@"; do
        chmod 0755 "${root}/${rel}"
    done
}

# Creates a reproducible .tar.gz of $2 (a directory name inside $1) at $3:
# sorted member names, fixed owner and timestamps, and gzip without the name
# and time header fields.
pkg_reproducible_tar() {
    local parent="$1" top="$2" out="$3"
    tar -C "$parent" \
        --sort=name \
        --owner=0 --group=0 --numeric-owner \
        --mtime="$PKG_TAR_MTIME" \
        --format=gnu \
        -cf - "$top" | gzip -n -9 >"$out"
}

# Writes "<hex>  <basename>" next to the file, in sha256sum's own format so
# that `sha256sum -c` works from inside the directory.
pkg_write_sha256() {
    local file="$1" dir base
    dir="$(dirname "$file")"
    base="$(basename "$file")"
    (cd "$dir" && sha256sum -- "$base") >"${file}.sha256.tmp"
    mv -f "${file}.sha256.tmp" "${file}.sha256"
}

# Fingerprint of everything in this directory that shapes a service's
# tarball (scripts, launchers, configs). Stored next to the tarball as
# <tarball>.recipe so that editing the packaging invalidates old builds.
pkg_recipe_hash() {
    local home="$1" service="$2"
    (cd "$home" && find lib.sh service-tarball.sh "services/${service}.sh" "files/${service}" \
        files/README.txt.in files/NOTICE.txt -type f -print0 |
        LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1
}

# Succeeds when the file and its .sha256 both exist and agree.
pkg_verify_sha256() {
    local file="$1" dir
    [[ -f "$file" && -f "${file}.sha256" ]] || return 1
    dir="$(dirname "$file")"
    (cd "$dir" && sha256sum --check --status --strict -- "$(basename "$file").sha256") 2>/dev/null
}

# Takes the build lock for the tarball ($1, held until the script ends) and
# sets `stage` to a fresh directory in the cache, removed on exit. A build that
# finished while we waited for the lock is used as it is: `cache_usable` (the
# caller's) is asked again, and the script prints the tarball and ends. Staging
# in the cache keeps the final renames atomic (one filesystem).
pkg_lock_and_stage() {
    local tarball="$1" cache name
    cache="$(dirname "$tarball")"
    name="$(basename "$tarball" .tar.gz)"
    mkdir -p "$cache"
    exec 9>"${cache}/.${name}.lock"
    flock 9
    if cache_usable; then
        log "cached (built concurrently): ${tarball}"
        printf '%s\n' "$tarball"
        exit 0
    fi
    # Leftovers of a build that was killed (SIGKILL skips the EXIT trap).
    # Only the lock holder builds this name, so nothing live is removed.
    rm -rf -- "${cache}/.build-${name}".*
    stage="$(mktemp -d "${cache}/.build-${name}.XXXXXX")"
    trap 'rm -rf -- "$stage"' EXIT
}

# Moves a tarball built at $1 (beside its .sha256) to $2 with the recipe ($3)
# it was built by, and prints its path. The checksum is renamed last: the
# fast path only ever sees a checksum that belongs to a complete tarball.
pkg_publish() {
    local built="$1" tarball="$2" recipe="$3"
    rm -f -- "${tarball}.sha256"
    mv -f -- "$built" "$tarball"
    printf '%s\n' "$recipe" >"${tarball}.recipe"
    mv -f -- "${built}.sha256" "${tarball}.sha256"
    log "built ${tarball} ($(du -h "$tarball" | cut -f1)), sha256 $(cut -d' ' -f1 "${tarball}.sha256")"
    printf '%s\n' "$tarball"
}
