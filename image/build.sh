#!/usr/bin/env bash
# Build the duocell Raspberry Pi image (npm run image).
#
# Only Debian's packages and the npm registry are used. Steps:
#   1. host tools (debootstrap, qemu-user-static, genimage, aarch64 cross compiler) and binfmt
#   2. base rootfs: Debian trixie arm64 by debootstrap, second stage under qemu-user
#      (cached as out/cache/base-<hash>.tar, keyed on the package list and this step's code)
#   3. duocell: compiled TypeScript + production node_modules, native addons
#      cross-compiled for arm64 with aarch64-linux-gnu-gcc (checked with `file`)
#   4. rootfs: base + duocell + units + sysctl + network + first-boot settings,
#      a small initramfs (MODULES=list, explicit modules) built inside the chroot
#   5. ext4 root (mke2fs -d, no loop device), FAT boot partition with the Pi firmware,
#      kernel, initrd and device trees, SD card image by genimage (mtools, no mounts)
#
# Outputs under image/out/ (gitignored):
#   rootfs.ext4         the root filesystem (also what the QEMU boot test boots)
#   vmlinuz, initrd.img the Debian arm64 kernel and initramfs (QEMU -kernel/-initrd)
#   duocell-rpi.img     the SD card image (FAT boot + ext4 root)
#   build-times.txt     seconds per step
#
# Environment: DUOCELL_IMAGE_BOARD (default rpi4-ec25), DUOCELL_IMAGE_MIRROR
# (default http://deb.debian.org/debian), DUOCELL_SKIP_APT=1 (don't install host tools),
# DUOCELL_IMAGE_ROOT_SIZE (ext4 size, default 2G).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${DUOCELL_IMAGE_OUT:-$ROOT/image/out}
BOARD=${DUOCELL_IMAGE_BOARD:-rpi4-ec25}
MIRROR=${DUOCELL_IMAGE_MIRROR:-http://deb.debian.org/debian}
SUITE=trixie
ROOT_SIZE=${DUOCELL_IMAGE_ROOT_SIZE:-2G}
mkdir -p "$OUT/cache"
: >"$OUT/build-times.txt"

log() { printf '[image %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
t_start=$(date +%s)
step_t=$t_start
step_done() {
  local now; now=$(date +%s)
  printf '%-12s %5ds\n' "$1" "$((now - step_t))" >>"$OUT/build-times.txt"
  log "$1 done in $((now - step_t))s"
  step_t=$now
}

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot, file ownership in the image)"

# --- 1. host tools ---------------------------------------------------------------------------
need=()
want() { command -v "$1" >/dev/null 2>&1 || need+=("$2"); }
want debootstrap debootstrap
want qemu-aarch64-static qemu-user-static
want update-binfmts binfmt-support
want genimage genimage
want mcopy mtools
want mkdosfs dosfstools
want mke2fs e2fsprogs
want aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
want aarch64-linux-gnu-g++ g++-aarch64-linux-gnu
want file file
want zstd zstd
if [ ${#need[@]} -gt 0 ]; then
  [ "${DUOCELL_SKIP_APT:-0}" = 1 ] && die "missing host tools: ${need[*]}"
  log "installing host tools: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# binfmt_misc is not mounted on a fresh machine; arm64 binaries in the chroot need it.
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || die "qemu-aarch64 binfmt handler is not registered"
step_done tools

# --- 2. base rootfs --------------------------------------------------------------------------
# Packages of the product image. nodejs: trixie's Node 20 matches the project's.
PKGS=(
  systemd systemd-sysv udev dbus kmod zstd
  nodejs ca-certificates
  iproute2 nftables iputils-ping procps
  conntrack                       # UDP steering moves flows off a dead uplink (src/drivers/conntrack)
  openssl
  udhcpc
  systemd-timesyncd wpasupplicant
  firmware-brcm80211 wireless-regdb
  hostapd iw
  dnsmasq-base                    # boot test: the test access point's DHCP server (image/boot-test.sh)
)
# Installed by apt once the initramfs settings are in place (see below).
KERNEL_PKGS=(initramfs-tools linux-image-arm64)
# Bump BASE_RECIPE when this step changes in a way the package lists don't show.
BASE_RECIPE=3
PKG_HASH=$(printf '%s\n' "$BASE_RECIPE" "$SUITE" "$MIRROR" "${PKGS[@]}" "${KERNEL_PKGS[@]}" "$(cat image/initramfs-modules)" | sha256sum | cut -c1-12)
BASE_TAR=$OUT/cache/base-$PKG_HASH.tar
FW_DEB=$OUT/cache/raspi-firmware-$PKG_HASH.deb
if [ ! -f "$BASE_TAR" ] || [ ! -f "$FW_DEB" ]; then
  log "debootstrap $SUITE arm64 (maintainer scripts under qemu-user; several minutes)"
  # A killed earlier run may have left /proc or /sys mounted in the tree: never rm through them.
  awk -v d="$OUT/base/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r -n1 umount -l
  rm -rf "$OUT/base"
  mkdir -p "$OUT/cache/debs"
  # Not --foreign: its second stage parses the package lists with perl under emulation,
  # once per package (tens of minutes). This way only dpkg runs emulated.
  debootstrap --arch=arm64 --variant=minbase \
    --components=main,non-free-firmware \
    --include="$(IFS=,; echo "${PKGS[*]}")" \
    --cache-dir="$OUT/cache/debs" \
    "$SUITE" "$OUT/base" "$MIRROR" >"$OUT/debootstrap.log" 2>&1 \
    || { tail -30 "$OUT/debootstrap.log" >&2; die "debootstrap failed (log: $OUT/debootstrap.log)"; }
  step_done debootstrap
  # The kernel after the initramfs settings: its postinst then builds a small initramfs
  # (MODULES=list; MODULES=most takes ~10 min under emulation).
  install -d "$OUT/base/etc/initramfs-tools/conf.d" "$OUT/base/usr/share/initramfs-tools/modules.d"
  printf 'MODULES=list\nCOMPRESS=zstd\n' >"$OUT/base/etc/initramfs-tools/conf.d/duocell.conf"
  cp "$ROOT/image/initramfs-modules" "$OUT/base/usr/share/initramfs-tools/modules.d/duocell"
  echo "deb $MIRROR $SUITE main non-free-firmware" >"$OUT/base/etc/apt/sources.list"
  mount -t proc proc "$OUT/base/proc"
  trap 'umount "$OUT/base/proc" 2>/dev/null || true' EXIT
  chroot "$OUT/base" apt-get update -qq
  cp "$OUT"/cache/debs/*.deb "$OUT/base/var/cache/apt/archives/" 2>/dev/null || true
  log "kernel and initramfs under qemu-user"
  # initramfs-tools first, alone: the triggers its dependencies fire find no kernel yet, so
  # the initramfs is generated once, by the kernel's postinst, not twice.
  : >"$OUT/kernel.log"
  for pkg in "${KERNEL_PKGS[@]}"; do
    DEBIAN_FRONTEND=noninteractive chroot "$OUT/base" apt-get install -y -qq --no-install-recommends \
      -o Dpkg::Options::=--force-confold "$pkg" >>"$OUT/kernel.log" 2>&1 \
      || { tail -30 "$OUT/kernel.log" >&2; die "installing $pkg failed (log: $OUT/kernel.log)"; }
  done
  cp -n "$OUT"/base/var/cache/apt/archives/*.deb "$OUT/cache/debs/" 2>/dev/null || true
  # The Pi's boot firmware comes from Debian's raspi-firmware package, unpacked (not
  # installed: its kernel hooks want a mounted /boot/firmware).
  chroot "$OUT/base" sh -c 'cd /tmp && apt-get download -qq raspi-firmware'
  mv "$OUT"/base/tmp/raspi-firmware_*.deb "$FW_DEB"
  chroot "$OUT/base" apt-get clean
  umount "$OUT/base/proc"
  trap - EXIT
  rm -rf "$OUT/base/var/lib/apt/lists/"*
  tar -C "$OUT/base" --numeric-owner -cf "$BASE_TAR.tmp" .
  mv "$BASE_TAR.tmp" "$BASE_TAR"
  rm -rf "$OUT/base"
fi
step_done base

rm -rf "$OUT/base"

# --- 3. duocell for arm64 --------------------------------------------------------------------
APP=$OUT/app
rm -rf "$APP"
mkdir -p "$APP"
# Whatever the checkout holds: compile it (setup.sh builds dist/ and the host addon).
# tsc emits JavaScript even when it reports type errors (another change mid-way): go on with
# what it emitted, as long as the entry point is there.
DUOCELL_SKIP_APT=${DUOCELL_SKIP_APT:-0} bash scripts/setup.sh || log "warning: scripts/setup.sh failed; going on"
npx --no-install tsc -p tsconfig.build.json >"$OUT/tsc.log" 2>&1 || log "warning: tsc reported errors (see $OUT/tsc.log)"
[ -f dist/src/cli/main.js ] || die "dist/src/cli/main.js missing: the TypeScript build failed"
cp -a package.json package-lock.json binding.gyp native bin board "$APP/"
mkdir -p "$APP/dist"
cp -a dist/src "$APP/dist/"
# Non-TypeScript files under src/ (the web page's static files, SQL, JSON): as they are.
mkdir -p "$APP/src"
(cd src && find . -type f ! -name '*.ts' -print0 | tar --null -cf - -T -) | tar -C "$APP/src" -xf -
[ -d docs ] && cp -a docs "$APP/" || true
export npm_config_nodedir=${npm_config_nodedir:-$(npm config get nodedir)}
cross_env() {
  export CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ AR=aarch64-linux-gnu-ar
  export npm_config_arch=arm64 npm_config_target_arch=arm64
}
gyp() { node "$ROOT/node_modules/node-gyp/bin/node-gyp.js" rebuild --arch=arm64 --loglevel=error "$@"; }
# Production node_modules for arm64, cached on the lock file (better-sqlite3 alone takes
# minutes to cross-compile on 2 cores).
MOD_HASH=$( { cat package-lock.json; sed -n '/^# --- 3/,/^# --- 4/p' "$0"; aarch64-linux-gnu-gcc --version | head -1; node --version; } | sha256sum | cut -c1-12)
MOD_TAR=$OUT/cache/modules-$MOD_HASH.tar
if [ -f "$MOD_TAR" ]; then
  tar -C "$APP" -xf "$MOD_TAR"
else
  (
    cd "$APP"
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error
    cross_env
    # Cross-compile every addon that has no arm64 prebuild; prune other platforms' prebuilds.
    find node_modules -name binding.gyp -not -path '*/deps/*' | while read -r g; do
      d=$(dirname "$g")
      if [ -d "$d/prebuilds/linux-arm64" ]; then
        find "$d/prebuilds" -mindepth 1 -maxdepth 1 -not -name linux-arm64 -exec rm -rf {} +
        continue
      fi
      log "cross-compiling $d for arm64"
      (cd "$d" && gyp --release >/dev/null) || exit 1
      rm -rf "$d/build/Release/obj" "$d/build/Release/obj.target" "$d/build/Release/.deps" \
        "$d/build/Release/test_extension.node" "$d/build/deps" "$d/build/src" "$d/deps"
    done
  ) || die "building node_modules for arm64 failed"
  tar -C "$APP" -cf "$MOD_TAR.tmp" node_modules && mv "$MOD_TAR.tmp" "$MOD_TAR"
fi
# duocell's own socket addon.
(cd "$APP" && cross_env && gyp >/dev/null && rm -rf build/Release/obj.target build/Release/.deps) \
  || die "cross-compiling duocell's native addon failed"
bad=$(find "$APP" -name '*.node' -exec file {} + | grep -v 'ARM aarch64' | grep -v '/prebuilds/linux-arm64/.*musl' || true)
[ -z "$bad" ] || die "native addons not built for arm64:\n$bad"
step_done app

# --- 4. rootfs -------------------------------------------------------------------------------
RFS=$OUT/rootfs
rm -rf "$RFS"
mkdir -p "$RFS"
tar -C "$RFS" -xf "$BASE_TAR"
install -d "$RFS/usr/lib/duocell"
cp -a "$APP/." "$RFS/usr/lib/duocell/"
chown -R 0:0 "$RFS/usr/lib/duocell"
ln -sf ../lib/duocell/bin/duocell.js "$RFS/usr/bin/duocell"
# Units, sysctl, users, tmpfiles, udev rules, network: the files in systemd/.
bash "$ROOT/image/install-system-files.sh" "$RFS" "$BOARD"
# First boot: no machine-id (systemd makes one), hostname, root locked, fstab.
: >"$RFS/etc/machine-id"
echo duocell >"$RFS/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 duocell\n' >"$RFS/etc/hosts"
cat >"$RFS/etc/fstab" <<'EOF'
LABEL=duocell-root  /               ext4  defaults,noatime,commit=30  0 1
LABEL=DUOCELLBOOT   /boot/firmware  vfat  defaults,nofail,fmask=0077,dmask=0077,x-systemd.device-timeout=5s  0 2
EOF
install -d "$RFS/boot/firmware"
chroot "$RFS" passwd -l root >/dev/null
KVER=$(basename "$(ls -d "$RFS"/lib/modules/* | sort -V | tail -1)")
[ -f "$RFS/boot/initrd.img-$KVER" ] || die "no initramfs for $KVER in the base rootfs"
cp "$RFS/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
cp "$RFS/boot/initrd.img-$KVER" "$OUT/initrd.img"
rm -rf "$RFS/var/cache/apt/"*.bin "$RFS/tmp/"* "$RFS/var/log/"*.log
echo "$KVER" >"$OUT/kernel-version"
step_done rootfs

# --- 5. disk images --------------------------------------------------------------------------
rm -f "$OUT/rootfs.ext4"
mke2fs -q -t ext4 -L duocell-root -d "$RFS" "$OUT/rootfs.ext4" "$ROOT_SIZE"
# FAT boot partition contents: Pi firmware (raspi-firmware .deb), kernel, initrd, DTBs.
BOOT=$OUT/boot
rm -rf "$BOOT" "$OUT/fw"
mkdir -p "$BOOT" "$OUT/fw"
dpkg-deb -x "$FW_DEB" "$OUT/fw"
cp -a "$OUT/fw/usr/lib/raspi-firmware/." "$BOOT/"
for dtb in bcm2711-rpi-4-b bcm2711-rpi-400 bcm2711-rpi-cm4 bcm2712-rpi-5-b; do
  f=$(find "$RFS/usr/lib/linux-image-$KVER" -name "$dtb.dtb" | head -1)
  [ -n "$f" ] && cp "$f" "$BOOT/" || log "no $dtb.dtb in this kernel"
done
cp "$OUT/vmlinuz" "$BOOT/vmlinuz"
cp "$OUT/initrd.img" "$BOOT/initrd.img"
cat >"$BOOT/config.txt" <<'EOF'
# duocell: Debian arm64 kernel on the Raspberry Pi 4/5
arm_64bit=1
enable_uart=1
upstream_kernel=1
kernel=vmlinuz
initramfs initrd.img followkernel
disable_overscan=1
EOF
echo "console=tty0 console=ttyS1,115200 root=LABEL=duocell-root rootfstype=ext4 rootwait net.ifnames=0 fsck.repair=yes" >"$BOOT/cmdline.txt"
boot_kib=$(( $(du -sk "$BOOT" | cut -f1) + 32768 ))
cat >"$OUT/genimage.cfg" <<EOF
image boot.vfat {
  vfat {
    label = "DUOCELLBOOT"
  }
  size = ${boot_kib}K
}
image duocell-rpi.img {
  hdimage {
    partition-table-type = "mbr"
  }
  partition boot {
    partition-type = 0xC
    bootable = "true"
    image = "boot.vfat"
    offset = 4M
  }
  partition root {
    partition-type = 0x83
    image = "rootfs.ext4"
  }
}
EOF
rm -rf "$OUT/genimage-tmp" "$OUT/duocell-rpi.img" "$OUT/boot.vfat"
genimage --config "$OUT/genimage.cfg" --rootpath "$BOOT" --tmppath "$OUT/genimage-tmp" \
  --inputpath "$OUT" --outputpath "$OUT" >"$OUT/genimage.log" 2>&1 || { tail -20 "$OUT/genimage.log" >&2; die "genimage failed"; }
rm -rf "$OUT/genimage-tmp"
step_done disk

total=$(( $(date +%s) - t_start ))
printf '%-10s %5ds\n' total "$total" >>"$OUT/build-times.txt"
du_root=$(du -sh --apparent-size "$RFS" | cut -f1)
log "image: $OUT/duocell-rpi.img ($(du -h --apparent-size "$OUT/duocell-rpi.img" | cut -f1), rootfs $du_root) in ${total}s"
cat "$OUT/build-times.txt" >&2
