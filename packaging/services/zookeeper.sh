# shellcheck shell=bash disable=SC2034  # variables are read by service-tarball.sh
# ZooKeeper service definition, sourced by service-tarball.sh.

# 3.9.5 is the newest 3.9 release whose POMs resolve completely on Maven Central
# (3.9.6 is listed in the metadata but its parent POM is not published).
SVC_DEFAULT_VERSION="3.9.5"
SVC_MIN_JAVA=11
SVC_LIB_DIR="lib"
SVC_EXECUTABLES=(bin/zkServer.sh bin/zkCli.sh)
SVC_MAIN_COORDS="org.apache.zookeeper:zookeeper"

# ZooKeeper's own parent POM is imported as a BOM so that the extras below get
# exactly the versions ZooKeeper itself was built and released with.
svc_pom_mgmt() {
    local version="$1"
    printf '    <dependency><groupId>org.apache.zookeeper</groupId><artifactId>parent</artifactId><version>%s</version><type>pom</type><scope>import</scope></dependency>\n' "$version"
}

svc_pom_deps() {
    local version="$1"
    pkg_dep org.apache.zookeeper zookeeper "$version"
    # The server logs through SLF4J 2; logback-classic is an *optional* runtime
    # dependency in ZooKeeper's POM, so it is not pulled in transitively.
    # Without it SLF4J prints "No SLF4J providers were found" and drops all logs.
    pkg_dep ch.qos.logback logback-classic
    # commons-cli is "provided" in ZooKeeper's POM but zkCli.sh parses its
    # command options with it, so the client would fail without it.
    pkg_dep commons-cli commons-cli
    # Also "provided" upstream yet needed at runtime: the default metrics
    # provider is built on Dropwizard metrics (the server dies at startup
    # with NoClassDefFoundError com/codahale/metrics/Reservoir without it),
    # and snappy backs the optional snapshot compression.
    pkg_dep io.dropwizard.metrics metrics-core
    pkg_dep org.xerial.snappy snappy-java
    # Not bundled: Jetty + Jackson for the HTTP AdminServer (disabled by
    # bin/zkServer.sh) and JLine (zkCli.sh works without line editing).
}
