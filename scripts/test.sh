#!/usr/bin/env bash
# The test command: lint, type-check, then every test. The integration tier starts its own
# Elasticsearch node (downloaded once into ~/.cache/hybridrank) unless ES_URL names one.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
echo "== ruff" && ruff check .
echo "== mypy" && mypy
echo "== pytest" && pytest -q -p no:cacheprovider "$@"
