#!/bin/sh
# Scale and soak benchmarks of kfs against a real MinIO (integration/
# scale_bench_test.go): a directory of KFS_SCALE_N objects (default
# 100,000: first name, ls -l, find, 1,000 open files, 64 readers, 16
# writers, peak RSS against the bound) and a KFS_SOAK mixed soak (default
# 10m, 8 workers, RSS/goroutines/fds every 10 s). Reports go to $OUT.
#
#   scripts/scale.sh                       # both, full size
#   KFS_SCALE_N=20000 KFS_SOAK=2m scripts/scale.sh
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/bench-results/scale-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
cd "$ROOT"
export PATH="$ROOT/.tools/bin:$PATH"
KFS_BENCH_OUT="$OUT/scale.txt" go test -count=1 -timeout 60m -run XXX -bench BenchmarkScale -benchtime 1x ./integration/ | grep -v '^time=' 
KFS_BENCH_OUT="$OUT/soak.txt" go test -count=1 -timeout 60m -run XXX -bench BenchmarkSoak -benchtime 1x ./integration/ | grep -v '^time='
echo "reports in $OUT"
