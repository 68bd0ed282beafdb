#!/bin/sh
# Builds the plugin zip with a JDK 21+ (Elasticsearch 9's minimum), found the way the project's launcher
# finds one: $ES_JAVA_HOME or $JAVA_HOME if recent enough, else the newest JDK under /usr/lib/jvm.
#   plugin/build.sh                      -> plugin/target/hybridrank-es-plugin-9.2.4.zip
#   plugin/build.sh -Des.version=9.2.5   (extra arguments go to mvn; add -o to build offline)
set -eu
cd "$(dirname "$0")"

major() {  # feature release of the JDK at $1, empty if none
    [ -x "$1/bin/java" ] || return 0
    if [ -f "$1/release" ]; then
        sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release"
    else
        "$1/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1
    fi
}

jdk=""
for candidate in "${ES_JAVA_HOME:-}" "${JAVA_HOME:-}"; do
    if [ -n "$candidate" ] && [ "$(major "$candidate")" -ge 21 ] 2>/dev/null; then jdk=$candidate; break; fi
done
if [ -z "$jdk" ]; then
    best=0
    for candidate in /usr/lib/jvm/*; do
        m=$(major "$candidate")
        if [ -n "$m" ] && [ "$m" -ge 21 ] && [ "$m" -gt "$best" ]; then best=$m; jdk=$candidate; fi
    done
fi
if [ -z "$jdk" ]; then
    echo "no JDK 21+ found (set ES_JAVA_HOME, or install one, e.g. openjdk-21-jdk-headless)" >&2
    exit 1
fi
JAVA_HOME=$jdk exec mvn -q -B package "$@"
