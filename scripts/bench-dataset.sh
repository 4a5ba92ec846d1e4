# The dataset cache (sourced by scripts/bench.sh, which starts the MinIO and
# sets KFS, S3B, MNT, BENCH_WORK, OUT and RUNS): 1,000 MiB in 100 objects of
# 10 MiB, read one file at a time with cat, as a training loop would.
#   epoch 1   cold, cache filling      vs kfs without the disk cache (cold)
#   epoch 2   after a remount, page cache dropped  vs direct GETs one at a time
#   epoch 3   page cache kept (passthrough reads the cache file's pages)
#   kfs warm  -j 4 into an empty cache  vs direct GETs 4 at a time
# and the GETs epoch 2 sent (want 0) and the daemon's peak RSS with and
# without the cache.
DS=bench/dataset/ DSN=100 DSSIZE=10485760
DCACHE=$BENCH_WORK/dcache
mbps() { awk -v s="$1" -v a="$2" -v b="$3" 'BEGIN{printf "%.0f", s/1048576/(b-a)}'; }
timed_cat() { # prints MB/s of cat of every dataset file, one at a time
  local t0 t1
  t0=$(date +%s.%N); cat "$MNT/$DS"f* > /dev/null; t1=$(date +%s.%N)
  mbps $((DSN * DSSIZE)) "$t0" "$t1"
}
kfs_pid() { "$KFS" status "$MNT" | awk -F'[:,]' '/"pid"/{gsub(/ /,"",$2); print $2; exit}'; }
peak_rss_mib() { awk '/VmHWM/{printf "%.0f", $2/1024}' "/proc/$1/status"; }
get_count() { "$KFS" metrics "$MNT" | awk '/^kfs_s3_requests_total\{.*op="GetObject"/{n+=$NF} END{print n+0}'; }

"$KFS" mount --daemon "$MNT" && { [ -d "$MNT/kfsbench" ] || mkdir "$MNT/kfsbench"; } && "$KFS" unmount "$MNT" # the bucket (PARTS without harness)
"$S3B" smallput -prefix "$DS" -n "$DSN" -size "$DSSIZE" -par 8 -name x >/dev/null
for run in $(seq 1 "$RUNS"); do
  rm -rf "$DCACHE"
  sync; echo 3 > /proc/sys/vm/drop_caches
  direct1=$("$S3B" smallget -prefix "$DS" -n "$DSN" -par 1 -name x | awk '/^RESULT/{printf "%.0f", $3*10}')
  sync; echo 3 > /proc/sys/vm/drop_caches
  direct4=$("$S3B" smallget -prefix "$DS" -n "$DSN" -par 4 -name x | awk '/^RESULT/{printf "%.0f", $3*10}')

  sync; echo 3 > /proc/sys/vm/drop_caches
  "$KFS" mount --daemon kfsbench "$MNT"
  nocache=$(timed_cat); rss_plain=$(peak_rss_mib "$(kfs_pid)")
  "$KFS" unmount "$MNT"

  sync; echo 3 > /proc/sys/vm/drop_caches
  "$KFS" mount --daemon --disk-cache-size 2GiB --cache-dir "$DCACHE" kfsbench "$MNT"
  epoch1=$(timed_cat); pid=$(kfs_pid)
  sleep 2 # the last fills are published in the background
  rss_cache=$(peak_rss_mib "$pid")
  "$KFS" unmount "$MNT"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done

  sync; echo 3 > /proc/sys/vm/drop_caches
  "$KFS" mount --daemon --disk-cache-size 2GiB --cache-dir "$DCACHE" kfsbench "$MNT"
  g0=$(get_count); epoch2=$(timed_cat); g1=$(get_count)
  epoch3=$(timed_cat)
  pid=$(kfs_pid); "$KFS" unmount "$MNT"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  # the local disk's own speed: cat of the cache's files, page cache dropped
  sync; echo 3 > /proc/sys/vm/drop_caches
  t0=$(date +%s.%N); cat "$DCACHE"/objects/*/??/???????????????????????????????????????? > /dev/null; t1=$(date +%s.%N)
  disk=$(mbps $((DSN * DSSIZE)) "$t0" "$t1")

  rm -rf "$DCACHE"
  sync; echo 3 > /proc/sys/vm/drop_caches
  "$KFS" mount --daemon --disk-cache-size 2GiB --cache-dir "$DCACHE" kfsbench "$MNT"
  t0=$(date +%s.%N); "$KFS" warm -j 4 "$MNT/$DS" >/dev/null; t1=$(date +%s.%N)
  warm=$(mbps $((DSN * DSSIZE)) "$t0" "$t1")
  pid=$(kfs_pid); "$KFS" unmount "$MNT"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done

  {
    printf 'dataset epoch 1 (cold, filling the disk cache): %s MB/s; kfs without the cache %s MB/s; ratio %s\n' "$epoch1" "$nocache" "$(ratio "$epoch1" "$nocache")"
    printf 'dataset epoch 2 (remount, page cache dropped): direct one at a time %s MB/s, kfs %s MB/s, ratio %s, GETs %s; cat of the cache files on the local disk %s MB/s (kfs/disk %s)\n' "$direct1" "$epoch2" "$(ratio "$epoch2" "$direct1")" "$((g1 - g0))" "$disk" "$(ratio "$epoch2" "$disk")"
    printf 'dataset epoch 3 (page cache kept, passthrough): kfs %s MB/s, ratio to direct %s\n' "$epoch3" "$(ratio "$epoch3" "$direct1")"
    printf 'dataset kfs warm -j 4: direct 4 at a time %s MB/s, kfs warm %s MB/s, ratio %s\n' "$direct4" "$warm" "$(ratio "$warm" "$direct4")"
    printf 'dataset peak RSS of kfs: without the disk cache %s MiB, with it %s MiB\n' "$rss_plain" "$rss_cache"
  } | tee -a "$OUT/extra.txt"
done
rm -rf "$DCACHE"
