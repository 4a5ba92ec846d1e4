# Sourced by scripts/bench.sh (PARTS="tools"): ordinary tools on many small
# files, on a kfs mount (default mode: close() means the object is in the
# bucket) against a local disk in the same run, with the S3 requests each
# made (kfs metrics). Rows: tar x of a 1,000-file tree, git clone of a local
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
  rm -rf "$tools_work/local/w" && mkdir -p "$tools_work/local/w"
  TOOLS_DIR=$tools_work/local/w
  [ -z "${TOOLS_PREP:-}" ] || (cd "$TOOLS_DIR" && sh -c "$TOOLS_PREP")
  sync
  local_s=$(tools_time "$@")
  mkdir -p "$MNT/tools/$name"
  TOOLS_DIR=$MNT/tools/$name
  [ -z "${TOOLS_PREP:-}" ] || (cd "$TOOLS_DIR" && sh -c "$TOOLS_PREP")
  r0=$(tools_requests "$MNT")
  kfs_s=$(tools_time "$@")
  r1=$(tools_requests "$MNT")
  printf '%s: local %s s, kfs %s s, ratio %s, %s requests (%s per file)\n' "$name" "$local_s" "$kfs_s" \
    "$(ratio "$kfs_s" "$local_s")" "$((r1 - r0))" "$(awk -v r=$((r1 - r0)) -v f="$files" 'BEGIN{printf "%.1f", r/f}')" |
    tee -a "$OUT/extra.txt"
}

"$KFS" unmount "$MNT" 2>/dev/null || true # left by a run that failed
"$S3B" rm -prefix tools/ >/dev/null # an earlier run's trees: every row starts in an empty directory
"$KFS" mount --daemon ${KFS_TOOLS_OPTS:-} kfsbench "$MNT"
tools_row "tar x 1000 files" 1000 tar -xf "$tools_work/tree.tar"
tools_row "git clone ~500 files" 500 git clone -q "$repo" clone
tools_row "rsync -a 1000 files" 1000 rsync -a "$tree/" copy/
# the second run finds everything in place: it copies nothing
TOOLS_PREP="rsync -a '$tree/' copy/" tools_row "rsync -a again" 1000 rsync -a "$tree/" copy/
tools_row "cp -a tree" 1000 cp -a "$tree" copy
TOOLS_PREP="cp -a '$tree' t" tools_row "rm -rf 1000 files" 1000 rm -rf t
tools_row "sqlite3 100 transactions" 100 sh -c 'sqlite3 db "create table t(a,b)"; for i in $(seq 100); do sqlite3 db "begin; insert into t values($i, randomblob(200)); commit;"; done'
"$KFS" unmount "$MNT"
