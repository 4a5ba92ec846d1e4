#!/usr/bin/env bash
# Benchmarks kfs against direct minio-go on the same MinIO in the same run,
# with the shared harness (../shared/bench, see its README), plus one
# scenario of our own: `cat` of 1,000 x 4 KiB files after a fresh mount vs
# 1,000 direct GETs one at a time. Results (raw.tsv, report.md with medians
# and per-run ratios to direct) go to $OUT (default bench-results/<time>).
#
#   scripts/bench.sh                 # RUNS=1, read scenarios
#   RUNS=3 SCENARIOS="seqread list" scripts/bench.sh
#   TARGETS="direct kfs s3fs" scripts/bench.sh   (peers: ../shared/bench/install-peers.sh first)
#   PARTS="dataset" scripts/bench.sh   # only some of: harness small list find dataset tools latency
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH=${KFS_BENCH_DIR:-$ROOT/../shared/bench}
[ -x "$BENCH/run-all.sh" ] || { echo "no bench harness at $BENCH (set KFS_BENCH_DIR)" >&2; exit 1; }
scripts/install-deps.sh
KFS=${KFS_BIN:-$ROOT/.tools/bin/kfs}   # KFS_BIN=path/to/other/kfs compares another build
[ -n "${KFS_BIN:-}" ] || go build -o .tools/bin/kfs .

export BENCH_WORK=${BENCH_WORK:-/var/tmp/kfs-bench}
export OUT=${OUT:-$ROOT/bench-results/$(date +%Y%m%d-%H%M%S)}
export RUNS=${RUNS:-1}
export SCENARIOS=${SCENARIOS:-"seqread par4 seqwrite list small randread meta"}
export S3_ENDPOINT=http://127.0.0.1:9100 S3_ACCESS_KEY=kfsbench S3_SECRET_KEY=kfsbenchsecret S3_BUCKET=kfsbench
export BENCH_MINIO_DIR=$BENCH_WORK/minio-data MINIO_BIN=$ROOT/.tools/bin/minio
mkdir -p "$BENCH_WORK" "$OUT"
"$BENCH/minio-up.sh"
stop_minio() { kill "$(cat "$BENCH_MINIO_DIR.pid")" 2>/dev/null || true; }
trap stop_minio EXIT

export KFS_ENDPOINT=$S3_ENDPOINT KFS_ACCESS_KEY=$S3_ACCESS_KEY KFS_SECRET_KEY=$S3_SECRET_KEY
export MOUNT_CMD="$KFS mount ${KFS_BENCH_OPTS:-} \$S3_BUCKET \$MNT"
export VERSION_CMD="$KFS version"
export S3BENCH_BIN=$ROOT/.tools/bin/s3bench
(cd "$BENCH/s3bench" && go build -o "$S3BENCH_BIN" .)
PARTS=" ${PARTS:-harness small list find dataset tools latency} "
part() { [[ $PARTS == *" $1 "* ]]; }
if part harness; then "$BENCH/run-all.sh" ${TARGETS:-direct kfs}; fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
# cat of 1,000 x 4 KiB files (the stat/ set of the harness) vs direct GETs one at a time;
# rm -rf of 1,000 x 4 KiB files vs one listing + batch RemoveObjects.
S3B=$S3BENCH_BIN MNT=$BENCH_WORK/mnt
mkdir -p "$MNT"
for run in $(seq 1 "$RUNS"); do
  part small || break
  sync; echo 3 > /proc/sys/vm/drop_caches
  direct=$("$S3B" smallget -prefix bench/stat/ -n 1000 -par 1 -name x | awk '/^RESULT/{print $3}')
  sync; echo 3 > /proc/sys/vm/drop_caches
  "$KFS" mount --daemon kfsbench "$MNT"
  t0=$(date +%s.%N); cat "$MNT"/bench/stat/* | cksum >/dev/null; t1=$(date +%s.%N)
  "$KFS" unmount "$MNT"
  kfs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", 1000/(b-a)}')
  printf 'small cat 1000x4KiB, fresh mount: direct one-at-a-time %s files/s, kfs %s files/s, ratio %s\n' \
    "$direct" "$kfs" "$(ratio "$kfs" "$direct")" | tee -a "$OUT/extra.txt"

  # cp of 1,000 x 4 KiB local files whose page cache is warm (the harness's
  # "small" step reads them cold from disk after drop_caches, while its
  # direct baseline makes the bytes in memory) vs PutObject one at a time.
  src=$BENCH_WORK/small-src-1000x4096
  [ -d "$src" ] || "$S3B" mkfiles -dir "$src" -n 1000 -size 4096
  cat "$src"/* > /dev/null
  direct=$("$S3B" smallput -prefix cptest-direct/ -n 1000 -size 4096 -par 1 -name x | awk '/^RESULT/{print $3}')
  "$KFS" mount --daemon kfsbench "$MNT"
  mkdir -p "$MNT/cptest/$run"
  t0=$(date +%s.%N); cp "$src"/* "$MNT/cptest/$run/"; t1=$(date +%s.%N)
  "$KFS" unmount "$MNT"
  kfs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", 1000/(b-a)}')
  printf 'cp 1000x4KiB (warm source) into a new dir: direct PutObject one at a time %s files/s, kfs %s files/s, ratio %s\n' \
    "$direct" "$kfs" "$(ratio "$kfs" "$direct")" | tee -a "$OUT/extra.txt"
  "$S3B" rm -prefix cptest-direct/ && "$S3B" rm -prefix cptest/

  "$S3B" smallput -prefix rmtest/ -n 1000 -size 4096 -par 16 -name x >/dev/null
  t0=$(date +%s.%N); "$S3B" rm -prefix rmtest/; t1=$(date +%s.%N)
  direct=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')
  "$S3B" smallput -prefix rmtest/ -n 1000 -size 4096 -par 16 -name x >/dev/null
  "$KFS" mount --daemon kfsbench "$MNT"
  t0=$(date +%s.%N); rm -rf "$MNT/rmtest"; t1=$(date +%s.%N)
  "$KFS" unmount "$MNT"
  kfs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')
  printf 'rm -rf 1000x4KiB: direct list+batch delete %s s, kfs %s s, ratio (direct/kfs) %s\n' \
    "$direct" "$kfs" "$(ratio "$direct" "$kfs")" | tee -a "$OUT/extra.txt"
done

# ls -l of the 10,000-entry list/ set after a fresh mount (metadata shown
# for every entry) vs direct ListObjectsV2 pages of the same prefix with
# MinIO's metadata=true (what kfs asks for), server warm.
go build -o .tools/bin/listmeta ./scripts/listmeta
list_meta() { # prints seconds of a full metadata listing of $1 (direct minio-go)
  .tools/bin/listmeta -prefix "$1" | awk '$1 != 10000 {exit 1} {print $2}'
}
for run in $(seq 1 "$RUNS"); do
  part list || break
  list_meta bench/list/ >/dev/null # server warm
  direct=$(list_meta bench/list/)
  "$KFS" mount --daemon kfsbench "$MNT"
  t0=$(date +%s.%N); ls -l "$MNT/bench/list" > /dev/null; t1=$(date +%s.%N)
  "$KFS" unmount "$MNT"
  kfs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')
  printf 'ls -l 10k entries, fresh mount, server warm: direct metadata listing %s s, kfs %s s, ratio (direct/kfs) %s\n' \
    "$direct" "$kfs" "$(ratio "$direct" "$kfs")" | tee -a "$OUT/extra.txt"
done

# find over the 100 x 100 tree after a fresh mount vs the same information
# from a direct recursive metadata listing (every object's metadata is what
# kfs needs for the types and modes readdir reports), server warm.
for run in $(seq 1 "$RUNS"); do
  part find || break
  .tools/bin/listmeta -prefix bench/tree/ -recursive >/dev/null # server warm
  direct=$(.tools/bin/listmeta -prefix bench/tree/ -recursive | awk '$1 != 10000 {exit 1} {print $2}')
  "$KFS" mount --daemon kfsbench "$MNT"
  t0=$(date +%s.%N); n=$(find "$MNT/bench/tree" | wc -l); t1=$(date +%s.%N)
  "$KFS" unmount "$MNT"
  [ "$n" = 10101 ] || { echo "find found $n paths, want 10101" >&2; exit 1; }
  kfs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')
  printf 'find 100x100, fresh mount, server warm: direct recursive metadata listing %s s, kfs %s s, ratio (direct/kfs) %s\n' \
    "$direct" "$kfs" "$(ratio "$direct" "$kfs")" | tee -a "$OUT/extra.txt"
done

if part dataset; then . scripts/bench-dataset.sh; fi
if part tools; then . scripts/bench-tools.sh; fi

# Change-to-visible latency with bucket events and with TTLs only (its own
# MinIO; LATENCY=0 skips it, it takes about 4 minutes).
if part latency && [ "${LATENCY:-1}" = 1 ]; then
  go test -count=1 -run XXX -bench ChangeToVisible -benchtime 1x ./integration/ | grep change-to-visible | tee -a "$OUT/extra.txt"
fi
