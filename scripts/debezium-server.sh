#!/usr/bin/env bash
# Puts Debezium Server 3.6.1 (io.debezium:debezium-server-dist, from Maven
# Central) into .cache/debezium/debezium-server for the live Debezium
# comparison (npm run test:debezium) and the benchmark's Debezium row. It
# needs Java 21+ to run (the tests use /usr/lib/jvm/temurin-25-jdk-amd64, or
# DEBEZIUM_JAVA_HOME). Idempotent: an extracted distribution is kept. The
# normal test suite does not need it (it compares against test/golden/debezium).
set -euo pipefail
cd "$(dirname "$0")/.."
version=3.6.1.Final
dest=.cache/debezium
if [ -f "$dest/debezium-server/debezium-server-dist-$version-runner.jar" ]; then
  echo "debezium server $version already in $dest/debezium-server"
  exit 0
fi
mkdir -p "$dest"
tmp=$(mktemp -d "$dest/.download-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# About 780 MB; Maven keeps a copy in ~/.m2, so a second extraction downloads nothing.
mvn -q -B dependency:copy -Dartifact="io.debezium:debezium-server-dist:$version:tar.gz" -DoutputDirectory="$PWD/$tmp"
tar -xzf "$tmp/debezium-server-dist-$version.tar.gz" -C "$tmp"
rm -rf "$dest/debezium-server"
mv "$tmp/debezium-server" "$dest/debezium-server"
echo "debezium server $version in $dest/debezium-server ($(ls "$dest/debezium-server/lib" | wc -l) jars)"
