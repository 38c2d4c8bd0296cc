# shellcheck shell=bash disable=SC2034  # variables are read by service-tarball.sh
# Kafka service definition, sourced by service-tarball.sh.

# 3.9 is the last line that supports both KRaft and ZooKeeper mode.
SVC_DEFAULT_VERSION="3.9.2"
SVC_MIN_JAVA=11
# The Apache Kafka distribution keeps jars in libs/ and configs in config/;
# we keep those names so operators find things where they expect them.
SVC_LIB_DIR="libs"
SVC_EXECUTABLES=(bin/kafka-run-class.sh bin/kafka-server-start.sh bin/kafka-storage.sh bin/kafka-topics.sh)
SVC_MAIN_COORDS="org.apache.kafka:kafka_2.13"

# Logging versions of the Kafka 3.9 line (its published POMs leave the SLF4J
# binding out, as it is a deployment choice).
KAFKA_SLF4J_VERSION="1.7.36"
KAFKA_RELOAD4J_VERSION="1.2.25"

svc_pom_mgmt() { :; }

svc_pom_deps() {
    local version="$1"
    # Broker, KRaft controller and kafka.tools.StorageTool (Scala 2.13 build).
    pkg_dep org.apache.kafka kafka_2.13 "$version"
    # Java CLI tools (org.apache.kafka.tools.TopicCommand and friends).
    pkg_dep org.apache.kafka kafka-tools "$version"
    # The broker configures logging through the log4j 1.x API (reload4j); it
    # must be on the classpath or kafka.Kafka fails at startup.
    pkg_dep org.slf4j slf4j-reload4j "$KAFKA_SLF4J_VERSION"
    pkg_dep ch.qos.reload4j reload4j "$KAFKA_RELOAD4J_VERSION"
}
