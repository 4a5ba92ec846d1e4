#!/usr/bin/env bash
# Benchmarks kfs on SeaweedFS's S3 gateway against direct minio-go on the
# same server in the same run, with the shared harness (../shared/bench).
# The sizes are smaller than the MinIO run's (SeaweedFS keeps its volumes
# on the same disk). Results go to $OUT (default bench-results/seaweed-<time>).
#
#   RUNS=3 scripts/bench-seaweed.sh
#   SCENARIOS="seqread list" scripts/bench-seaweed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH=${KFS_BENCH_DIR:-$ROOT/../shared/bench}
[ -x "$BENCH/run-all.sh" ] || { echo "no bench harness at $BENCH (set KFS_BENCH_DIR)" >&2; exit 1; }
scripts/install-deps.sh
go build -o .tools/bin/kfs .

export BENCH_WORK=${BENCH_WORK:-/var/tmp/kfs-bench-weed}
export OUT=${OUT:-$ROOT/bench-results/seaweed-$(date +%Y%m%d-%H%M%S)}
export RUNS=${RUNS:-1}
export SCENARIOS=${SCENARIOS:-"seqread par4 seqwrite list small randread meta"}
export BIG_SIZE=${BIG_SIZE:-512MiB} PAR_SIZE=${PAR_SIZE:-128MiB} LIST_N=${LIST_N:-5000} TREE_DIRS=${TREE_DIRS:-50} TREE_FILES=${TREE_FILES:-100}
export DATA_PREFIX=${DATA_PREFIX:-bench-small/}
export S3_ACCESS_KEY=kfsbench S3_SECRET_KEY=kfsbenchsecret S3_BUCKET=kfsbench
# Loopback ports below the ephemeral range, each given (weed's default
# gRPC port is port+10000).
P=19400
export S3_ENDPOINT=http://127.0.0.1:$((P + 6))
WEED_DIR=$BENCH_WORK/weed
mkdir -p "$WEED_DIR/data" "$OUT"
cat > "$WEED_DIR/s3.json" <<JSON
{"identities":[{"name":"bench","credentials":[{"accessKey":"$S3_ACCESS_KEY","secretKey":"$S3_SECRET_KEY"}],"actions":["Admin","Read","Write","List","Tagging"]}]}
JSON
setsid .tools/bin/weed server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$WEED_DIR/data" \
  -master.port=$P -master.port.grpc=$((P + 1)) -master.volumeSizeLimitMB=512 -master.telemetry=false \
  -volume.port=$((P + 2)) -volume.port.grpc=$((P + 3)) -volume.max=0 \
  -filer -filer.port=$((P + 4)) -filer.port.grpc=$((P + 5)) \
  -s3 -s3.port=$((P + 6)) -s3.port.grpc=$((P + 7)) -s3.config="$WEED_DIR/s3.json" \
  >"$WEED_DIR.log" 2>&1 </dev/null &
WEED_PID=$!
stop_weed() { kill "$WEED_PID" 2>/dev/null || true; wait "$WEED_PID" 2>/dev/null || true; }
trap stop_weed EXIT
for _ in $(seq 1 300); do
  curl -s -o /dev/null "$S3_ENDPOINT" && break
  sleep 0.2
done

export KFS_ENDPOINT=$S3_ENDPOINT KFS_ACCESS_KEY=$S3_ACCESS_KEY KFS_SECRET_KEY=$S3_SECRET_KEY
export MOUNT_CMD="$ROOT/.tools/bin/kfs mount ${KFS_BENCH_OPTS:-} \$S3_BUCKET \$MNT"
export VERSION_CMD="$ROOT/.tools/bin/kfs version"
export S3BENCH_BIN=$ROOT/.tools/bin/s3bench
(cd "$BENCH/s3bench" && go build -o "$S3BENCH_BIN" .)
"$BENCH/run-all.sh" ${TARGETS:-direct kfs}
echo "results: $OUT/report.md"
