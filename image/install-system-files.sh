#!/usr/bin/env bash
# Install duocell's system files into a root filesystem tree (used by image/build.sh).
#   install-system-files.sh ROOTFS BOARD
# Units, sysctl, sysusers, modules-load, journald settings, /etc/default/duocell, udev rules
# for the board's modem and a systemd-networkd file for its LAN, both written from the board
# profile; duocell.service and systemd-networkd enabled.
set -euo pipefail
cd "$(dirname "$0")/.."
RFS=${1:?usage: install-system-files.sh ROOTFS BOARD}
BOARD=${2:?usage: install-system-files.sh ROOTFS BOARD}
[ -f "board/$BOARD.json" ] || { echo "no board profile board/$BOARD.json" >&2; exit 1; }

install -D -m 0644 systemd/duocell.service "$RFS/usr/lib/systemd/system/duocell.service"
install -D -m 0644 systemd/duocell-wlan.service "$RFS/usr/lib/systemd/system/duocell-wlan.service"
install -D -m 0644 systemd/60-duocell.conf "$RFS/usr/lib/sysctl.d/60-duocell.conf"
install -D -m 0644 systemd/duocell.sysusers "$RFS/usr/lib/sysusers.d/duocell.conf"
install -D -m 0644 systemd/duocell.modules "$RFS/usr/lib/modules-load.d/duocell.conf"
install -D -m 0644 systemd/duocell.tmpfiles "$RFS/usr/lib/tmpfiles.d/duocell.conf"
install -D -m 0644 systemd/journald-duocell.conf "$RFS/usr/lib/systemd/journald.conf.d/60-duocell.conf"
install -D -m 0644 systemd/duocell.default "$RFS/etc/default/duocell"
sed -i "s/^DUOCELL_BOARD=.*/DUOCELL_BOARD=$BOARD/" "$RFS/etc/default/duocell"

# Written from the profile by duocell's own code (dist/ is built by then).
node image/system-files.mjs "$BOARD" "$RFS"

# The user now (stable ownership in the image); systemd-sysusers checks again at boot.
systemd-sysusers --root="$RFS" >/dev/null
systemctl --root="$RFS" enable duocell.service >/dev/null 2>&1
# wpa_supplicant for the WLAN uplink (duocell adds the interface), where the image has it.
if [ -x "$RFS/usr/sbin/wpa_supplicant" ]; then
  systemctl --root="$RFS" enable duocell-wlan.service >/dev/null 2>&1
fi
# The LAN and the uplinks' link state: systemd-networkd (absent from a bare test tree).
if [ -e "$RFS/usr/lib/systemd/system/systemd-networkd.service" ]; then
  systemctl --root="$RFS" enable systemd-networkd.service >/dev/null 2>&1
fi
test -L "$RFS/etc/systemd/system/multi-user.target.wants/duocell.service"
