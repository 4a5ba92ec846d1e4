# Sourced by scripts/bench.sh (PARTS="tools"): ordinary tools on many small
# files, on a kfs mount against a local disk in the same run, in both modes
# (default: close() means the object is in the bucket; --write-back: close()
# means durable on local disk, uploads after), with the S3 requests each
# made (kfs metrics, counted after kfs sync: every upload included). A third
# mode, "loopback", runs the rows on go-fuse's own loopback example (a FUSE
# filesystem passing every call to a local directory: no network, no
# durability) over the same disk: the floor FUSE itself sets here. Rows: tar x of a 1,000-file tree, git clone of a local
# ~500-file repository, rsync -a of 1,000 small files (and a second run that
# copies nothing), rm -rf of 1,000 files, sqlite3 with 100 transactions,
# cp -a of a tree. Ratios are kfs time / local time (lower is better).

tools_work=$BENCH_WORK/tools
rm -rf "$tools_work" && mkdir -p "$tools_work/local"
# The inputs, made once: 1,000 files of 1-8 KiB in 20 directories, with
# modes, times and a few symlinks; a git repository of ~500 files.
tree=$tools_work/tree
mkdir -p "$tree"
for d in $(seq -w 1 20); do
  mkdir -p "$tree/d$d"
  for f in $(seq -w 1 50); do
    head -c $(( (RANDOM % 8 + 1) * 1024 )) /dev/urandom > "$tree/d$d/f$f.dat"
  done
  chmod 640 "$tree/d$d"/f0*.dat
  ln -s f01.dat "$tree/d$d/link"
done
touch -d '2024-01-02 03:04:05' "$tree"/d01/*
tar -C "$tools_work" -cf "$tools_work/tree.tar" tree
repo=$tools_work/repo
git init -q "$repo"
for d in $(seq -w 1 10); do
  mkdir -p "$repo/pkg$d"
  for f in $(seq -w 1 50); do printf 'package p%s\n// file %s\nvar X%s = %s\n' "$d" "$f" "$f" "$RANDOM" > "$repo/pkg$d/f$f.go"; done
done
git -C "$repo" add -A && git -C "$repo" -c user.email=b@k -c user.name=bench commit -qm init

tools_requests() { # S3 requests the mount at $1 made so far
  "$KFS" metrics "$1" | awk '/^kfs_s3_requests_total/ {n += $NF} END {printf "%d", n}'
}
tools_time() { # runs "$@" in $TOOLS_DIR, prints seconds
  local t0 t1
  t0=$(date +%s.%N)
  (cd "$TOOLS_DIR" && "$@") >/dev/null 2>&1 || { echo "bench-tools: $* failed in $TOOLS_DIR" >&2; return 1; }
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}'
}
tools_row() { # name files command...: the command in a fresh local dir and a fresh mount dir,
  # each prepared first (untimed) by $TOOLS_PREP when set
  local name=$1 files=$2 local_s kfs_s r0 r1
  shift 2
  local runs="" i
  for i in 1 2 3; do # the local disk's times swing with its page cache: the median of three
    rm -rf "$tools_work/local/w" && mkdir -p "$tools_work/local/w"
    TOOLS_DIR=$tools_work/local/w
    [ -z "${TOOLS_PREP:-}" ] || (cd "$TOOLS_DIR" && sh -c "$TOOLS_PREP")
    sync
    runs="$runs $(tools_time "$@")"
  done
  local_s=$(printf '%s\n' $runs | sort -n | sed -n 2p)
  mkdir -p "$MNT/tools/$name"
  TOOLS_DIR=$MNT/tools/$name
  [ -z "${TOOLS_PREP:-}" ] || (cd "$TOOLS_DIR" && sh -c "$TOOLS_PREP")
  if [ "$TOOLS_MODE" = loopback ]; then
    kfs_s=$(tools_time "$@")
    printf '%s [%s]: local %s s, FUSE loopback %s s, ratio %s\n' "$name" "$TOOLS_MODE" "$local_s" "$kfs_s" "$(ratio "$kfs_s" "$local_s")" |
      tee -a "$OUT/extra.txt"
    return
  fi
  "$KFS" sync "$MNT"
  r0=$(tools_requests "$MNT")
  kfs_s=$(tools_time "$@")
  local s0 s1
  s0=$(date +%s.%N)
  "$KFS" sync "$MNT" # write-back: until everything is in the bucket (default mode: nothing to wait for)
  s1=$(date +%s.%N)
  r1=$(tools_requests "$MNT")
  printf '%s [%s]: local %s s, kfs %s s, ratio %s, then kfs sync %s s, %s requests (%s per file)\n' "$name" "$TOOLS_MODE" "$local_s" "$kfs_s" \
    "$(ratio "$kfs_s" "$local_s")" "$(awk -v a="$s0" -v b="$s1" 'BEGIN{printf "%.2f", b-a}')" "$((r1 - r0))" \
    "$(awk -v r=$((r1 - r0)) -v f="$files" 'BEGIN{printf "%.1f", r/f}')" |
    tee -a "$OUT/extra.txt"
}

tools_rows() {
  tools_row "tar x 1000 files" 1000 tar -xf "$tools_work/tree.tar"
  tools_row "git clone ~500 files" 500 git clone -q "$repo" clone
  tools_row "rsync -a 1000 files" 1000 rsync -a "$tree/" copy/
  # the second run finds everything in place: it copies nothing
  TOOLS_PREP="rsync -a '$tree/' copy/" tools_row "rsync -a again" 1000 rsync -a "$tree/" copy/
  tools_row "cp -a tree" 1000 cp -a "$tree" copy
  TOOLS_PREP="cp -a '$tree' t" tools_row "rm -rf 1000 files" 1000 rm -rf t
  tools_row "sqlite3 100 transactions" 100 sh -c 'sqlite3 db "create table t(a,b)"; for i in $(seq 100); do sqlite3 db "begin; insert into t values($i, randomblob(200)); commit;"; done'
}

for TOOLS_MODE in ${TOOLS_MODES:-default write-back loopback}; do
  if [ "$TOOLS_MODE" = loopback ]; then
    go build -o "$ROOT/.tools/bin/fuse-loopback" github.com/hanwen/go-fuse/v2/example/loopback
    rm -rf "$tools_work/loopback" && mkdir -p "$tools_work/loopback"
    "$ROOT/.tools/bin/fuse-loopback" "$MNT" "$tools_work/loopback" >/dev/null 2>&1 &
    for _ in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.1; done
    tools_rows
    fusermount3 -u "$MNT" 2>/dev/null || fusermount -u "$MNT"
    continue
  fi
  "$KFS" unmount "$MNT" 2>/dev/null || true # left by a run that failed
  "$S3B" rm -prefix tools/ >/dev/null # an earlier run's trees: every row starts in an empty directory
  mode_opts=""
  [ "$TOOLS_MODE" = default ] || mode_opts="--$TOOLS_MODE"
  "$KFS" mount --daemon ${KFS_TOOLS_OPTS:-} $mode_opts kfsbench "$MNT"
  tools_rows
  "$KFS" unmount "$MNT"
done
