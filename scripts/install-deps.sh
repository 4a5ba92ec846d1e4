#!/usr/bin/env bash
# Installs what kfs's tests and demo need on a fresh Debian machine (as root):
# fuse3 and attr from Debian, and the pinned MinIO server built from the Go
# module proxy into .tools/bin (cached: rebuilt only when missing or when the
# pinned version changes; ~4 min the first time on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c

need=()
command -v fusermount3 >/dev/null || need+=(fuse3)
command -v getfattr >/dev/null || need+=(attr)
command -v setfacl >/dev/null || need+=(acl)
command -v curl >/dev/null || need+=(curl)
command -v rsync >/dev/null || need+=(rsync)
command -v setpriv >/dev/null && command -v nsenter >/dev/null || need+=(util-linux)
command -v ip >/dev/null || need+=(iproute2) # the distributed MinIO test: network namespaces
command -v perl >/dev/null || need+=(perl-base)
[ -x /usr/bin/python3 ] || need+=(python3-minimal) # a planted-socket test's fake server, run as another user
if ((${#need[@]})); then
  echo "installing ${need[*]}..."
  export DEBIAN_FRONTEND=noninteractive
  for try in 1 2 3; do
    if apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; then break; fi
    [ "$try" = 3 ] && { echo "apt-get install ${need[*]} failed" >&2; exit 1; }
    sleep 5
  done
fi
[ -c /dev/fuse ] || { echo "/dev/fuse is missing: kfs needs FUSE" >&2; exit 1; }

# KFS_DEPS=demo: only what the demo needs (the packages and MinIO), not
# the test tools (staticcheck, csi-sanity, SeaweedFS).
TEST_TOOLS=true
[ "${KFS_DEPS:-all}" = demo ] && TEST_TOOLS=false

STATICCHECK_VERSION=v0.8.2
if $TEST_TOOLS && { [ ! -x .tools/bin/staticcheck ] || [ "$(cat .tools/bin/staticcheck.version 2>/dev/null)" != "$STATICCHECK_VERSION" ]; }; then
  mkdir -p .tools/bin
  GOBIN="$PWD/.tools/bin" go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
  echo "$STATICCHECK_VERSION" > .tools/bin/staticcheck.version
fi

# csi-sanity: the upstream conformance suite `kfs csi` is tested with.
CSI_SANITY_VERSION=v5.4.0
if $TEST_TOOLS && { [ ! -x .tools/bin/csi-sanity ] || [ "$(cat .tools/bin/csi-sanity.version 2>/dev/null)" != "$CSI_SANITY_VERSION" ]; }; then
  mkdir -p .tools/bin
  GOBIN="$PWD/.tools/bin" go install "github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity@$CSI_SANITY_VERSION"
  echo "$CSI_SANITY_VERSION" > .tools/bin/csi-sanity.version
fi

# SeaweedFS's weed: the second S3 server kfs is tested against. Its module
# has a replace directive, so `go install` refuses it: a throwaway wrapper
# module copies the replace and builds the pinned version.
WEED_VERSION=v0.0.0-20261109003541-7506e5f91cd6
if $TEST_TOOLS && { [ ! -x .tools/bin/weed ] || [ "$(cat .tools/bin/weed.version 2>/dev/null)" != "$WEED_VERSION" ]; }; then
  echo "building SeaweedFS weed $WEED_VERSION into .tools/bin (a few minutes the first time)..."
  mkdir -p .tools/bin
  wrap=$(mktemp -d)
  trap 'rm -rf "$wrap"' EXIT
  cat > "$wrap/go.mod" <<MOD
module kfs-weed-build

go 1.26.8

replace github.com/tyler-smith/go-bip39 => github.com/cosmos/go-bip39 v1.0.0
MOD
  root=$PWD
  (cd "$wrap" && GOFLAGS=-buildvcs=false go get "github.com/seaweedfs/seaweedfs/weed@$WEED_VERSION" >"$wrap/get.log" 2>&1 ||
    { cat "$wrap/get.log" >&2; exit 1; })
  (cd "$wrap" && GOFLAGS=-buildvcs=false go build -o "$root/.tools/bin/weed" github.com/seaweedfs/seaweedfs/weed)
  echo "$WEED_VERSION" > .tools/bin/weed.version
fi

if [ ! -x .tools/bin/minio ] || [ "$(cat .tools/bin/minio.version 2>/dev/null)" != "$MINIO_VERSION" ]; then
  echo "building MinIO $MINIO_VERSION into .tools/bin (a few minutes the first time)..."
  mkdir -p .tools/bin
  GOBIN="$PWD/.tools/bin" GOFLAGS=-buildvcs=false go install "github.com/minio/minio@$MINIO_VERSION"
  echo "$MINIO_VERSION" > .tools/bin/minio.version
fi
