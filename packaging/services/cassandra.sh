# shellcheck shell=bash disable=SC2034  # variables are read by service-tarball.sh
# Cassandra service definition, sourced by service-tarball.sh.

SVC_DEFAULT_VERSION="5.0.9"
# Cassandra 5.0 runs on JDK 11 or 17; the shipped JVM options target 17.
SVC_MIN_JAVA=17
SVC_LIB_DIR="lib"
SVC_EXECUTABLES=(bin/cassandra bin/nodetool)
SVC_MAIN_COORDS="org.apache.cassandra:cassandra-all"

svc_pom_mgmt() { :; }

svc_pom_deps() {
    local version="$1"
    # cassandra-all declares every runtime dependency of the server and of
    # nodetool (airline, JMX helpers), including logback and jamm.
    pkg_dep org.apache.cassandra cassandra-all "$version"
}
