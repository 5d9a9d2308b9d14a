#!/usr/bin/env bash
# Runs a command on a Debian 12 system where nothing was installed by hand: a fresh
# debootstrapped bookworm root, given only what this kind of machine promises a new project
# (Node.js 20 with npm, g++, make, python3 — the host's own Node.js and npm files, copied as they
# are because their apt source is not reachable here) and the host's CA bundle and npm
# settings (the registry is reached through them). Everything else must come from the project's
# own set-up (`npm test` → scripts/setup.sh, `npm run image`, `npm run test:image`).
#
#   bash .ci/fresh-debian.sh SRC_DIR COMMAND...
#
# SRC_DIR (a clean clone) is copied to /root/duocell inside; COMMAND runs there as root with
# CI=true. The root lives in its own mount namespace, so its /proc, /sys, /dev and /run mounts
# (and the network namespaces the tests make under /run/netns) vanish with it; the root folder is
# deleted at the end. Exit status: the command's.
set -euo pipefail
src=$(cd "$1" && pwd)
shift
ROOT=${DUOCELL_CI_ROOT:-/var/tmp/duocell-ci-root}
MIRROR=${DUOCELL_CI_MIRROR:-http://deb.debian.org/debian}
log() { printf 'fresh-debian: %s\n' "$*" >&2; }

[ "$(id -u)" -eq 0 ] || { log "must run as root"; exit 1; }
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v unshare >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  log "installing host tools: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cleanup() { rm -rf --one-file-system "$ROOT"; }
trap cleanup EXIT
cleanup
mkdir -p "$ROOT"

start=$(date +%s)
log "debootstrap bookworm into $ROOT"
debootstrap --merged-usr bookworm "$ROOT" "$MIRROR" >"$ROOT.debootstrap.log" 2>&1 \
  || { tail -n 30 "$ROOT.debootstrap.log" >&2; rm -f "$ROOT.debootstrap.log"; exit 1; }
rm -f "$ROOT.debootstrap.log"
# The same apt sources as the host (bookworm, updates, security).
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  cp /etc/apt/sources.list.d/debian.sources "$ROOT/etc/apt/sources.list.d/"
  : >"$ROOT/etc/apt/sources.list"
fi
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# No package's service starts inside the root (the usual chroot policy): a daemon left running
# would outlive the run.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"

# The machine's givens: the host's own Node.js and npm (binary, headers for node-gyp, npm and
# corepack as they are now: npm was upgraded after the package was installed), g++, make, python3.
node_files=(usr/bin/node usr/bin/npm usr/bin/npx usr/lib/node_modules/npm usr/include/node)
[ -e /usr/bin/corepack ] && node_files+=(usr/bin/corepack usr/lib/node_modules/corepack)
tar -C / -cf - "${node_files[@]}" | tar -C "$ROOT" -xf -
# The host's CA bundle (the registry is reached through it) and npm's settings.
host_ca=$(mktemp)
cp /etc/ssl/certs/ca-certificates.crt "$host_ca"
for f in /etc/npmrc /usr/etc/npmrc /root/.npmrc; do
  if [ -f "$f" ]; then mkdir -p "$ROOT$(dirname "$f")"; cp "$f" "$ROOT$f"; fi
done

mounts() {
  # The root must be a mount point of its own: `ip -n NS` remounts / as a slave in a mount
  # namespace of its own, which fails with EINVAL on a plain directory.
  mount --bind "$ROOT" "$ROOT"
  mount -t proc proc "$ROOT/proc"
  mount --rbind /sys "$ROOT/sys"
  mount --rbind /dev "$ROOT/dev"
  mount -t tmpfs -o mode=1777 tmpfs "$ROOT/dev/shm"
  mount -t tmpfs -o mode=755 tmpfs "$ROOT/run"
  mount -t tmpfs -o mode=1777 tmpfs "$ROOT/tmp"
}
in_root() {
  # A private mount namespace: nothing mounted here is seen outside or outlives the run.
  unshare --mount --propagation private -- bash -c "$(declare -f mounts); ROOT='$ROOT'; mounts; exec chroot '$ROOT' /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 TERM=dumb CI=true DUOCELL_CI_INSIDE=1 $(printf '%q ' "$@")"
}

log "installing the machine's givens (node $(node --version), g++, make, python3)"
in_root bash -c 'export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends ca-certificates g++ make python3 >/dev/null'
cat "$host_ca" >"$ROOT/usr/local/share/ca-certificates/host-bundle.crt"
in_root update-ca-certificates >/dev/null 2>&1 || true
cp "$host_ca" "$ROOT/etc/ssl/certs/ca-certificates.crt"
rm -f "$host_ca"

log "copying the checkout"
mkdir -p "$ROOT/root/duocell"
tar -C "$src" --exclude=./node_modules --exclude=./build --exclude=./dist --exclude=./.tap -cf - . | tar -C "$ROOT/root/duocell" -xf -
log "ready in $(( $(date +%s) - start )) s: node $(in_root node --version), npm $(in_root npm --version)"

set +e
in_root bash -c "cd /root/duocell && $(printf '%q ' "$@")"
rc=$?
set -e
log "command exited $rc after $(( $(date +%s) - start )) s in all"
exit "$rc"
