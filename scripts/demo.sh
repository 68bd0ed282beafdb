#!/usr/bin/env bash
# The main job, end to end: start the local Elasticsearch, index a real collection, evaluate every
# retrieval mode on its test split, train the learned ranker on its train split, show the gain.
# Usage: scripts/demo.sh [COLLECTION]   (default: scifact in ../shared/datasets, or in
# $HYBRIDRANK_SHARED_DIR/datasets; any BEIR-layout folder)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
exec hybridrank demo ${1:+--collection "$1"}
