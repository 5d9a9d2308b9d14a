#!/usr/bin/env bash
# One set-up for `npm start`, `npm test` and `npm run bench` on a fresh Debian 12 machine:
# Debian packages the system needs, npm packages, the native addon, the TypeScript build,
# and the kernel settings. Idempotent and quiet when everything is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
want() { command -v "$1" >/dev/null 2>&1 || need_pkgs+=("$2"); }
want ip iproute2
want tc iproute2
want nft nftables
want iperf3 iperf3
want socat socat
want tcpdump tcpdump
want conntrack conntrack
want ethtool ethtool
want cc gcc                       # build/delayline, build/connload (native/*.c)
want systemd-analyze systemd
want python3 python3
want shellcheck shellcheck        # the OpenWrt init script's checks
want busybox busybox
want chromium chromium            # the web page's browser tests (playwright-core drives it)
want openssl openssl              # the web page's per-device HTTPS certificate (src/wiring/first-boot.ts)
want udhcpc udhcpc                # AT-only modems (ECM/NCM): the DHCP client on usb0 (src/drivers/modem/dhcp-lease.ts)
want dnsmasq dnsmasq-base         # the simulated AT-only modem's DHCP server (src/sim/modem/ecm.ts)
want bird bird2                   # the concentrator pool's BGP/BFD (test/kernel/proxy-anycast.test.ts)
want gtlsclient ngtcp2-client     # a real QUIC client: the UDP flow move and quic: block (test/kernel/udp-quic*.test.ts)
want gtlsserver ngtcp2-server     # its server (/usr/sbin; the tests run as root)
want danted dante-server           # an independent SOCKS5 server as a proxy candidate (test/kernel/proxy-socks5.test.ts)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_pkgs+=(fonts-dejavu-core)
if [ "${DUOCELL_SKIP_APT:-0}" != 1 ] && [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing ${need_pkgs[*]} and not root; install them with apt-get" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${need_pkgs[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# npm packages: install when absent or when the lock file changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi

# The native socket addon (built offline against Node's own headers).
if [ ! -f build/Release/duocell_sockets.node ] || [ native/sockets.c -nt build/Release/duocell_sockets.node ] \
   || [ binding.gyp -nt build/Release/duocell_sockets.node ]; then
  echo "setup: building native addon" >&2
  npx --no-install node-gyp rebuild --loglevel=error >/dev/null
fi

# The link emulator's delay line (src/sim/links.ts runs it in the simulated board's dc-wire).
if [ ! -x build/delayline ] || [ native/delayline.c -nt build/delayline ]; then
  echo "setup: building build/delayline" >&2
  mkdir -p build
  cc -O2 -Wall -Wextra -o build/delayline native/delayline.c
fi

# The benchmarks' connection load generator and echo server (bench/engine.ts, setup-cell.ts, convert.ts).
if [ ! -x build/connload ] || [ native/connload.c -nt build/connload ]; then
  echo "setup: building build/connload" >&2
  mkdir -p build
  cc -O2 -Wall -Wextra -o build/connload native/connload.c
fi

# TypeScript → dist/ (what `duocell` runs).
if [ ! -f dist/.built ] || [ -n "$(find src bench scripts test/helpers tsconfig.json tsconfig.build.json -newer dist/.built -print -quit 2>/dev/null)" ]; then
  echo "setup: compiling TypeScript" >&2
  npx --no-install tsc -p tsconfig.build.json
  touch dist/.built
fi

# The kernel's MPTCP must be on (it is per network namespace; sim and tests set their own).
if [ "$(id -u)" -eq 0 ] && [ -w /proc/sys/net/mptcp/enabled ]; then
  echo 1 > /proc/sys/net/mptcp/enabled
fi
