#!/usr/bin/env bash
# Boot the image's root filesystem under QEMU and check duocell as systemd runs it
# (npm run test:image). Needs image/out/ from image/build.sh.
#
#   qemu-system-aarch64 -M virt (software emulation), Debian's arm64 kernel + the image's
#   initramfs, rootfs.ext4 as a virtio disk (a throw-away copy), user-mode networking that
#   plays the board's LAN (192.168.225.0/24, the box at .1) with loopback ports forwarded
#   to the web page on 192.168.225.1:80 (plain: only a redirect) and :443 (HTTPS).
#
# The copy gets a test agent (never in the product image): a unit reading shell commands
# from a virtio-serial port, and a drop-in arming duocell's debug hang signal. Checks:
#   1. duocell reaches READY (Type=notify: ActiveState=active) with no modem present
#   2. the watchdog is armed (WatchdogUSec) and pinged (WatchdogTimestamp)
#   3. GET /api/v1/health answers 200 over HTTPS; plain HTTP on the LAN only redirects to it
#   4. the first-boot page asks for a password (auth/state: setUp=false; / serves the page);
#      the set-up secret is on the login banner (/run/issue.d) beside the certificate's
#      fingerprint; set-up without the secret is refused, with it accepted; /metrics needs its token
#   5. a crash (SIGSEGV) is restarted by systemd
#   6. a blocked event loop (debug signal) is caught by the watchdog and restarted
# Prints TAP lines and "N passed, N failed"; exit status 1 when any check failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
OUT=${DUOCELL_IMAGE_OUT:-$ROOT/image/out}
BOOT_TIMEOUT=${DUOCELL_BOOT_TIMEOUT:-600}
WORK=$(mktemp -d /tmp/duocell-boot.XXXXXX)
QEMU_PID=
AG_PID=
n=0; passed=0; failed=0

log() { printf '# [%s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
ok() { n=$((n + 1)); passed=$((passed + 1)); echo "ok $n - $*"; }
notok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
check() { local what=$1; shift; if "$@" >/dev/null; then ok "$what"; else notok "$what"; fi; }
finish() {
  [ -n "$AG_PID" ] && kill "$AG_PID" 2>/dev/null
  [ -n "$QEMU_PID" ] && kill "$QEMU_PID" 2>/dev/null && wait "$QEMU_PID" 2>/dev/null
  if [ "$failed" -gt 0 ] || [ "${1:-0}" != 0 ]; then
    cp "$WORK/console.log" "$OUT/boot-test-console.log" 2>/dev/null
    log "console log kept in $OUT/boot-test-console.log"
  fi
  rm -rf "$WORK"
  echo "1..$n"
  echo "boot-test: ${passed} passed, ${failed} failed"
}
trap 'finish 1; exit 1' INT TERM

for f in rootfs.ext4 vmlinuz initrd.img; do
  [ -f "$OUT/$f" ] || { echo "Bail out! $OUT/$f missing: run npm run image first"; exit 1; }
done
need=()
command -v qemu-system-aarch64 >/dev/null || need+=(qemu-system-arm)
# The virtio NIC's option ROM: qemu-system-data links it from ipxe-qemu, which is only a
# recommendation (skipped by --no-install-recommends); without it QEMU stops at once.
[ -e /usr/share/qemu/efi-virtio.rom ] || need+=(ipxe-qemu)
command -v debugfs >/dev/null || need+=(e2fsprogs)
command -v socat >/dev/null || need+=(socat)
command -v curl >/dev/null || need+=(curl)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  [ "${DUOCELL_SKIP_APT:-0}" = 1 ] && { echo "Bail out! missing ${need[*]}"; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
fi

# --- the throw-away disk with the test agent -----------------------------------------------
cp --sparse=always "$OUT/rootfs.ext4" "$WORK/disk.ext4"
cat >"$WORK/agent.sh" <<'EOF'
#!/bin/sh
# duocell boot-test agent: runs each line read from the virtio port, answers output + status.
port=/dev/virtio-ports/boottest
while [ ! -e "$port" ]; do sleep 1; done
exec 3<>"$port"
while IFS= read -r line <&3; do
  out=$(sh -c "$line" 2>&1)
  rc=$?
  printf '%s\n@@RC %s\n' "$out" "$rc" >&3
done
EOF
cat >"$WORK/agent.service" <<'EOF'
[Unit]
Description=duocell boot-test agent (test disks only)
[Service]
ExecStart=/bin/sh /usr/local/sbin/duocell-boottest
Restart=always
RestartSec=1
[Install]
WantedBy=multi-user.target
EOF
cat >"$WORK/dropin.conf" <<'EOF'
[Service]
Environment=DUOCELL_DEBUG_HANG_SIGNAL=SIGUSR2
EOF
cat >"$WORK/debugfs.cmd" <<EOF
mkdir /usr/local/sbin
write $WORK/agent.sh /usr/local/sbin/duocell-boottest
sif /usr/local/sbin/duocell-boottest mode 0100755
write $WORK/agent.service /etc/systemd/system/duocell-boottest.service
sif /etc/systemd/system/duocell-boottest.service mode 0100644
symlink /etc/systemd/system/multi-user.target.wants/duocell-boottest.service /etc/systemd/system/duocell-boottest.service
mkdir /etc/systemd/system/duocell.service.d
write $WORK/dropin.conf /etc/systemd/system/duocell.service.d/boottest.conf
sif /etc/systemd/system/duocell.service.d/boottest.conf mode 0100644
EOF
debugfs -w -f "$WORK/debugfs.cmd" "$WORK/disk.ext4" >"$WORK/debugfs.log" 2>&1
debugfs -R 'stat /usr/local/sbin/duocell-boottest' "$WORK/disk.ext4" 2>/dev/null | grep -q 'Mode:  0755' \
  || { cat "$WORK/debugfs.log"; echo "Bail out! could not add the test agent to the disk copy"; finish 1; exit 1; }

# --- boot ----------------------------------------------------------------------------------
freeport() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
PORT=$(freeport)
SPORT=$(freeport)
log "booting (web page forwarded to 127.0.0.1:$PORT, HTTPS to 127.0.0.1:$SPORT; boot timeout ${BOOT_TIMEOUT}s)"
t0=$(date +%s)
qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 -nographic -no-reboot \
  -kernel "$OUT/vmlinuz" -initrd "$OUT/initrd.img" \
  -append "root=/dev/vda rw rootfstype=ext4 console=ttyAMA0 net.ifnames=0 systemd.show_status=auto panic=-1" \
  -drive file="$WORK/disk.ext4",if=none,format=raw,id=hd0 -device virtio-blk-pci,drive=hd0 \
  -netdev user,id=lan,net=192.168.225.0/24,host=192.168.225.2,dhcpstart=192.168.225.200,hostfwd=tcp:127.0.0.1:"$PORT"-192.168.225.1:80,hostfwd=tcp:127.0.0.1:"$SPORT"-192.168.225.1:443 \
  -device virtio-net-pci,netdev=lan \
  -device virtio-serial-pci -chardev socket,id=ag,path="$WORK/agent.sock",server=on,wait=off \
  -device virtserialport,chardev=ag,name=boottest \
  -serial file:"$WORK/console.log" -monitor none </dev/null >"$WORK/qemu.log" 2>&1 &
QEMU_PID=$!
for _ in $(seq 50); do [ -S "$WORK/agent.sock" ] && break; sleep 0.2; done

# The agent channel: socat between two FIFOs and the socket (explicit descriptors, unlike a
# coproc's, are inherited by $(...) subshells). guest CMD prints CMD's output, returns its status.
mkfifo "$WORK/to-guest" "$WORK/from-guest"
# Opened read-write: on Linux that does not block, whoever comes first (QEMU's chardev takes
# one client, so one socat carries both directions).
exec {agw}<>"$WORK/to-guest" {agr}<>"$WORK/from-guest"
socat - UNIX-CONNECT:"$WORK/agent.sock" <"$WORK/to-guest" >"$WORK/from-guest" 2>/dev/null &
AG_PID=$!
seq_no=0
guest() {
  local line out=""
  printf '%s\n' "$*" >&"$agw" || return 255
  while IFS= read -r -t "${GUEST_TIMEOUT:-120}" line <&"$agr"; do
    case $line in
      "@@RC "*) printf '%s' "$out"; return "${line#@@RC }" ;;
      *) out+="$line"$'\n' ;;
    esac
  done
  return 255
}
# Wait for the agent: ping with a fresh token until that token comes back.
agent_up=0
while [ $(( $(date +%s) - t0 )) -lt "$BOOT_TIMEOUT" ]; do
  kill -0 "$QEMU_PID" 2>/dev/null || break
  seq_no=$((seq_no + 1))
  printf 'echo PONG-%s\n' "$seq_no" >&"$agw" || break
  got=0
  while IFS= read -r -t 5 line <&"$agr"; do
    [ "$line" = "PONG-$seq_no" ] && got=1
    [ "$got" = 1 ] && [ "${line#@@RC }" != "$line" ] && break
  done
  [ "$got" = 1 ] && { agent_up=1; break; }
done
if [ "$agent_up" != 1 ]; then
  notok "the guest came up (agent answered within ${BOOT_TIMEOUT}s)"
  tail -40 "$WORK/console.log" | sed 's/^/# /'
  finish 1
  exit 1
fi
log "guest agent up after $(( $(date +%s) - t0 ))s"

prop() { guest "systemctl show duocell -p $1 --value"; }
wait_active() { # wait_active TIMEOUT [NOT_PID]: active, and (if given) another main pid
  local end=$(( $(date +%s) + $1 )) st pid
  while [ "$(date +%s)" -lt "$end" ]; do
    st=$(prop ActiveState | tr -d '\n'); pid=$(prop MainPID | tr -d '\n')
    if [ "$st" = active ] && [ "$pid" != 0 ] && { [ -z "${2:-}" ] || [ "$pid" != "$2" ]; }; then return 0; fi
    sleep 2
  done
  return 1
}

# 1. READY with no modem
if wait_active 300; then
  ok "duocell reached READY under systemd (ActiveState=active, Type=$(prop Type | tr -d '\n')) after $(( $(date +%s) - t0 ))s"
else
  notok "duocell reached READY under systemd (state: $(prop ActiveState | tr -d '\n')/$(prop SubState | tr -d '\n'))"
  guest "journalctl -u duocell --no-pager -n 40 -o cat" | sed 's/^/# /'
fi
check "no modem port present (the pulled-modem case) and duocell READY anyway" \
  guest 'test ! -e /dev/ttyUSB2 && test ! -e /dev/cdc-wdm0 && systemctl is-active -q duocell'
check "runs as user duocell, not root" guest 'test "$(ps -o user= -p "$(systemctl show duocell -p MainPID --value)")" = duocell'
status=$(prop StatusText | tr -d '\n'); log "StatusText: $status"

# 2. watchdog
wd=$(prop WatchdogUSec | tr -d '\n')
check "watchdog armed (WatchdogUSec=$wd)" test "$wd" = 30s
sleep 20
wts=$(prop WatchdogTimestampMonotonic | tr -d '\n')
check "watchdog pinged by duocell (WatchdogTimestampMonotonic=$wts)" test "${wts:-0}" -gt 0

# 3. health over HTTPS (the device's self-signed certificate: -k); plain HTTP only redirects
S="https://127.0.0.1:$SPORT"
code=$(curl -sk -o "$WORK/health.json" -w '%{http_code}' --max-time 20 "$S/api/v1/health")
check "GET /api/v1/health answers 200 over HTTPS on the LAN address (got $code: $(head -c 200 "$WORK/health.json" 2>/dev/null))" test "$code" = 200
loc=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' --max-time 20 "http://127.0.0.1:$PORT/api/v1/health")
check "plain HTTP on the LAN only redirects to HTTPS (got $loc)" test "$loc" = "308 https://192.168.225.1/api/v1/health"

# 4. first boot: no password yet, the page asks for one and for the box's set-up secret
curl -sk -c "$WORK/jar" -b "$WORK/jar" --max-time 20 "$S/api/v1/auth/state" >"$WORK/auth.json"
check "first boot: no admin password set yet, the set-up secret required (auth/state: $(head -c 200 "$WORK/auth.json"))" \
  sh -c 'grep -q "\"setUp\":false" "$1" && grep -q "\"firstBootSecretRequired\":true" "$1"' _ "$WORK/auth.json"
secret=$(guest 'cat /var/lib/duocell/first-boot/setup-secret' | tr -d '\r\n')
banner=$(guest 'cat /run/issue.d/duocell.issue')
fp=$(openssl s_client -connect "127.0.0.1:$SPORT" </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//')
check "the login banner (/run/issue.d) shows the set-up secret and the certificate fingerprint ($fp)" \
  sh -c 'printf "%s" "$1" | grep -q "set-up secret: $2" && printf "%s" "$1" | grep -q "fingerprint: $3"' _ "$banner" "${secret:-none}" "${fp:-none}"
csrf=$(sed -n 's/.*"csrf":"\([^"]*\)".*/\1/p' "$WORK/auth.json")
setup() { curl -sk -b "$WORK/jar" -c "$WORK/jar" -o "$WORK/setup.json" -w '%{http_code}' --max-time 60 -H "x-csrf-token: $csrf" -H 'content-type: application/json' --data "$1" "$S/api/v1/auth/setup"; }
code=$(setup '{"password":"correct horse battery staple"}')
check "set-up without the secret is refused (got $code: $(head -c 200 "$WORK/setup.json"))" sh -c "test $code = 403 && grep -q DC_WEB_FIRST_BOOT_SECRET '$WORK/setup.json'"
code=$(setup "{\"password\":\"correct horse battery staple\",\"secret\":\"$secret\"}")
check "set-up with the secret from the box is accepted (got $code: $(head -c 200 "$WORK/setup.json"))" test "$code" = 200
code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 20 "$S/metrics")
check "/metrics on the LAN needs its token (got $code without it)" test "$code" = 401
code=$(curl -sk -o "$WORK/index.html" -w '%{http_code}' --max-time 20 "$S/")
# The page is drawn by its script: with setUp=false it shows the set-up form (setupView).
script=$(sed -n 's/.*<script[^>]*src="\([^"]*\)".*/\1/p' "$WORK/index.html" | head -1)
curl -sk --max-time 20 "$S${script:-/app.js}" >"$WORK/app.js"
check "the page is served (GET / $code, script ${script:-none}) and its first-boot view asks for a new admin password" \
  grep -q 'setup-password' "$WORK/app.js"

# 5. crash → restart
pid=$(prop MainPID | tr -d '\n'); restarts=$(prop NRestarts | tr -d '\n')
guest "kill -SEGV $pid" >/dev/null
if wait_active 240 "$pid"; then
  ok "a crash (SIGSEGV to $pid) is restarted by systemd (NRestarts $restarts -> $(prop NRestarts | tr -d '\n'))"
else
  notok "a crash (SIGSEGV to $pid) is restarted by systemd"
fi

# 6. blocked event loop → watchdog
pid=$(prop MainPID | tr -d '\n')
guest "kill -USR2 $pid" >/dev/null
if wait_active 300 "$pid" && guest "journalctl -u duocell --no-pager -o cat | grep -q 'Watchdog timeout'"; then
  ok "a blocked event loop is caught by the watchdog (systemd: Watchdog timeout) and restarted"
else
  notok "a blocked event loop is caught by the watchdog and restarted"
  guest "journalctl -u duocell --no-pager -n 30 -o cat" | sed 's/^/# /'
fi

log "total $(( $(date +%s) - t0 ))s"
guest "systemctl poweroff" >/dev/null 2>&1 &
sleep 3
finish 0
[ "$failed" -eq 0 ]
