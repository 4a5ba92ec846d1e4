#!/usr/bin/env bash
# Installs the test prerequisites, then checks gofmt, go vet and
# staticcheck and runs every test: unit tests, the fuzz seeds, the
# in-process FUSE tier over the fake store, and the integration tests (a
# real MinIO on 127.0.0.1 and real FUSE mounts of the kfs binary), all
# under the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
test -z "$(gofmt -l $(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $(git ls-files '*.go'); exit 1; }
go vet ./...
.tools/bin/staticcheck ./...
go test -race -count=1 -timeout 25m ./...
