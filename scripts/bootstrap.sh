#!/usr/bin/env bash
# Idempotent set-up shared by scripts/demo.sh and scripts/test.sh (source it; it changes nothing twice):
#   - system packages: Maven (fetches Elasticsearch from Maven Central), Debian's en_US hunspell
#     dictionary (English stemming on a bare Elasticsearch), unzip, Chromium (HTML report tests);
#   - a Java 21+ runtime must exist (Elasticsearch 9 needs it; the launcher finds it);
#   - a virtualenv (.venv, or $HYBRIDRANK_VENV) with the project and its dev tools installed;
#   - the project's Elasticsearch plugin (plugin/, Maven + the JDK 21+), rebuilt when its sources change;
#     the launcher installs it into the managed node (connector/node/plugin.py).
# Caches live outside the repo: pip's cache, and ~/.cache/hybridrank for the Elasticsearch download.
set -euo pipefail
HR_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HR_VENV="${HYBRIDRANK_VENV:-$HR_ROOT/.venv}"

need=()
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v unzip >/dev/null 2>&1 || need+=(unzip)
[ -f /usr/share/hunspell/en_US.dic ] || need+=(hunspell-en-us)
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "bootstrap: installing system packages: ${need[*]}" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "bootstrap: please install these Debian packages first: ${need[*]}" >&2
    exit 1
  fi
fi

java_ok=0
for release in ${ES_JAVA_HOME:+$ES_JAVA_HOME/release} ${JAVA_HOME:+$JAVA_HOME/release} /usr/lib/jvm/*/release; do
  [ -f "$release" ] || continue
  major=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$release")
  if [ -n "$major" ] && [ "$major" -ge 21 ]; then java_ok=1; break; fi
done
if [ "$java_ok" -ne 1 ] && [ -z "${ES_URL:-}" ]; then
  echo "bootstrap: Elasticsearch 9 needs Java 21+; none found under /usr/lib/jvm (set ES_JAVA_HOME)" >&2
  exit 1
fi

PY=${PYTHON:-python3}
if [ ! -x "$HR_VENV/bin/python" ]; then
  "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
    || { echo "bootstrap: Python 3.11+ is required" >&2; exit 1; }
  echo "bootstrap: creating $HR_VENV" >&2
  "$PY" -m venv "$HR_VENV"
fi
stamp="$HR_VENV/.hybridrank-installed"
want=$(cat "$HR_ROOT/pyproject.toml" | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing hybridrank and its dependencies into $HR_VENV (pip cache is reused)" >&2
  "$HR_VENV/bin/pip" install -q --upgrade pip >/dev/null
  "$HR_VENV/bin/pip" install -q -e "$HR_ROOT[dev]"
  echo "$want" > "$stamp"
fi
export PATH="$HR_VENV/bin:$PATH"

plugin_sum=$(cd "$HR_ROOT/plugin" && find pom.xml build.sh src -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
plugin_stamp="$HR_ROOT/plugin/target/.built-$plugin_sum"
if [ -z "${ES_URL:-}" ] && [ ! -f "$plugin_stamp" ]; then
  echo "bootstrap: building the Elasticsearch plugin (plugin/build.sh; Maven's cache is reused)" >&2
  rm -f "$HR_ROOT"/plugin/target/.built-*
  mkdir -p "$HR_ROOT/plugin/target"
  if ! "$HR_ROOT/plugin/build.sh" > "$HR_ROOT/plugin/target/build.log" 2>&1; then
    tail -n 40 "$HR_ROOT/plugin/target/build.log" >&2
    echo "bootstrap: the plugin did not build (whole log: plugin/target/build.log)" >&2
    exit 1
  fi
  touch "$plugin_stamp"
fi
