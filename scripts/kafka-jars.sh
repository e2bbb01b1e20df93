#!/usr/bin/env bash
# Puts Apache Kafka's broker jars (from Maven Central) into .cache/kafka/libs
# for the tests' single-node KRaft broker. Idempotent: a complete cache is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.cache/kafka/libs
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' scripts/kafka/pom.xml)
marker="$dest/.complete-$version"
if [ -f "$marker" ]; then
  echo "kafka jars $version already in $dest"
  exit 0
fi
rm -rf "$dest"
mkdir -p "$dest"
mvn -q -B -f scripts/kafka/pom.xml dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$PWD/$dest"
touch "$marker"
echo "kafka jars $version: $(ls "$dest" | wc -l) files in $dest"
