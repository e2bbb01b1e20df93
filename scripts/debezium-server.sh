#!/usr/bin/env bash
# Puts Debezium Server 3.6.1 (io.debezium:debezium-server-dist, from Maven
# Central) into .cache/debezium/debezium-server for the live Debezium
# comparison (npm run test:debezium) and the benchmark's Debezium row. It
# needs Java 21+ to run (the tests use /usr/lib/jvm/temurin-25-jdk-amd64, or
# DEBEZIUM_JAVA_HOME). Idempotent: an extracted distribution is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
version=3.6.1.Final
dest=.cache/debezium
if [ -f "$dest/debezium-server/debezium-server-dist-$version-runner.jar" ]; then
  echo "debezium server $version already in $dest/debezium-server"
  exit 0
fi
tarball="${HOME}/.m2/repository/io/debezium/debezium-server-dist/$version/debezium-server-dist-$version.tar.gz"
if [ ! -f "$tarball" ]; then
  mvn -q -B dependency:get -Dartifact="io.debezium:debezium-server-dist:$version:tar.gz" -Dtransitive=false
fi
mkdir -p "$dest"
tmp=$(mktemp -d "$dest/.extract-XXXXXX")
tar -xzf "$tarball" -C "$tmp"
rm -rf "$dest/debezium-server"
mv "$tmp/debezium-server" "$dest/debezium-server"
rmdir "$tmp"
echo "debezium server $version in $dest/debezium-server ($(ls "$dest/debezium-server/lib" | wc -l) jars)"
