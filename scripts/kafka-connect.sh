#!/usr/bin/env bash
# Puts a Kafka Connect worker (org.apache.kafka:connect-runtime and
# connect-json, the Kafka version of scripts/kafka/pom.xml) into
# .cache/kafka-connect/runtime, and two Connect plugins into
# .cache/kafka-connect/plugins: Debezium's PostgreSQL connector 3.6.1 (the
# version Debezium Server 3.6.1 carries) and Debezium's JDBC sink connector
# 3.6.0 (3.6.1 is not on Maven Central), all from Maven Central, for
# npm run test:kafka-connect. The worker runs on the default Java 17.
# Idempotent: a complete cache is kept. The normal test suite does not need
# it (it compares against test/golden/kafka-connect).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.cache/kafka-connect
kafka=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' scripts/kafka/pom.xml)
marker="$dest/.complete-$kafka-3.6.1-3.6.0-agroal-jackson-modules"
if [ -f "$marker" ]; then
  echo "kafka connect $kafka and debezium plugins already in $dest"
  exit 0
fi
rm -rf "$dest"
copy() { # pom, folder
  mkdir -p "$2"
  mvn -q -B -f "scripts/kafka-connect/$1.pom.xml" -Dkafka.version="$kafka" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$PWD/$2"
}
copy runtime "$dest/runtime"
copy postgres "$dest/plugins/debezium-postgres"
copy jdbc "$dest/plugins/debezium-jdbc"
touch "$marker"
echo "kafka connect $kafka in $dest: $(ls "$dest/runtime" | wc -l) runtime jars, plugins $(ls "$dest/plugins" | tr '\n' ' ')"
