#!/usr/bin/env bash
# Installs the test prerequisites, then runs every test: unit tests, the
# fuzz seeds, and the integration tests (a real MinIO on 127.0.0.1 and real
# FUSE mounts of the kfs binary), all under the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
test -z "$(gofmt -l $(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $(git ls-files '*.go'); exit 1; }
go vet ./...
go test -race -count=1 -timeout 25m ./...
