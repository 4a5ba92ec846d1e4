#!/usr/bin/env bash
# The demo: builds and installs kfs, brings up a local MinIO on
# 127.0.0.1:9000 with the buckets shared-storage and private-storage (a few
# sample files, CSV among them) and a webhook target for bucket events
# attached to both, writes ~/.config/kfs/credentials.json and mounts
# /kfs_public and /kfs_private with the event receiver and a 2 GiB dataset
# cache (kfs warm) on, so `kfs watch`
# prints events and changes made with the SDK or curl show at once. Run it again at any time: it reuses a
# running server and skips mounts that are live. `scripts/demo.sh down`
# unmounts and stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."
CRED=${KFS_CREDENTIALS:-$HOME/.config/kfs/credentials.json}
if [ "${1:-up}" = down ]; then
  for m in /kfs_public /kfs_private; do mountpoint -q "$m" && kfs unmount "$m"; done
  go run ./integration/kfsdemo down
  exit 0
fi
KFS_DEPS=demo scripts/install-deps.sh # the test tools (SeaweedFS, csi-sanity) are not needed here
go build -o .tools/bin/kfs .
install -m 0755 .tools/bin/kfs /usr/local/bin/kfs
go run ./integration/kfsdemo -credentials "$CRED" up
for m in /kfs_public /kfs_private; do
  # a mount whose kfs process is gone (killed, machine suspended) answers
  # "Transport endpoint is not connected" until it is unmounted
  if grep -q " $m fuse.kfs " /proc/mounts && ! stat -f "$m" >/dev/null 2>&1; then
    echo "unmounting the dead mount $m"; kfs unmount --lazy "$m"
  fi
done
mkdir -p /kfs_public /kfs_private
if mountpoint -q /kfs_public || mountpoint -q /kfs_private; then
  echo "already mounted: /kfs_public /kfs_private"
else
  # shellcheck disable=SC2046 # the flags are words: --events-webhook ADDR (the token is EVENTS_TOKEN in the credentials file)
  # the dataset cache is on in the demo (see README: Dataset cache)
  kfs mount --config "$CRED" --daemon --log-file "$PWD/.tools/demo/kfs.log" --disk-cache-size 2GiB $(go run ./integration/kfsdemo flags)
fi
echo "ready:"; ls -l /kfs_public /kfs_private
