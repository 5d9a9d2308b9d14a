#!/bin/bash
# Kernel-only reproducer of the half-closed MPTCP stall (issue 17, item 4). No duocell code runs.
#
# Client namespace (two paths, in-kernel path manager, endpoint 10.X.2.1 'subflow') and server
# namespace, joined by two links shaped as the lte and wlan profiles. The server streams SIZE bytes as soon
# as it accepts; the client half-closes (FIN) either at once ('early', what a phone does after
# sending its request) or after the whole download ('late'). One second after the FIN ('late': after connect) the
# initial subflow's path (link 1, lte) goes down on both sides. The script prints whether the download
# completed, how long it took, the subflows the client had when its path died and the nstat
# MPTcpExt*/Tcp* counters of both namespaces that changed during the run.
#
# 'hold' is the remedy: the client holds its FIN until its second subflow is up at both ends (at most HOLD_MAX_S, default 3 s).
#
# usage (root): test/repro/half-closed-stall.sh early|late|hold [PREFIX] [SIZE] [WAIT_S]
set -euo pipefail
MODE=${1:-early}
P=${2:-stlrepro}
SIZE=${3:-6000000}
WAIT=${4:-30}
C=$P-cli
S=$P-srv
trap 'cleanup' EXIT
for ns in "$C" "$S" "$P-wire"; do ip netns del "$ns" 2>/dev/null || true; done
ip netns add "$C"
ip netns add "$S"
for ns in "$C" "$S"; do
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -qw net.mptcp.enabled=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
  ip -n "$ns" mptcp limits set subflows 4 add_addr_accepted 4
done
# Link 1 = "lte" (20 Mbit/s, 40 ms RTT, 10 ms jitter, 0.1 % loss), link 2 = "wlan" (30 Mbit/s,
# 8 ms RTT, 3 ms jitter, 0.5 % loss): the profiles of src/sim/links.ts. This kernel has no netem,
# so delay, jitter and loss come from the repository's delay line (native/delayline.c, a plain
# AF_PACKET frame forwarder in a third namespace; DELAYLINE=none gives plain veth links, rate only).
RATES=(0 20 30); SPECS=(x "delay=20,jitter=5,loss=0.1" "delay=4,jitter=1.5,loss=0.5")
W=$P-wire
DELAYLINE=${DELAYLINE:-$(dirname "$0")/../../build/delayline}
DL_PIDS=()
cleanup() {
  for pid in "${DL_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for ns in "$C" "$S" "$W"; do ip netns del "$ns" 2>/dev/null || true; done
}
[ "$DELAYLINE" = none ] || ip netns add "$W"
for i in 1 2; do
  if [ "$DELAYLINE" = none ]; then
    ip link add "${P}c$i" netns "$C" type veth peer name "${P}s$i" netns "$S"
  else
    ip link add "${P}c$i" netns "$C" type veth peer name "w${i}a" netns "$W"
    ip link add "${P}s$i" netns "$S" type veth peer name "w${i}b" netns "$W"
    for d in "w${i}a" "w${i}b"; do ip netns exec "$W" ethtool -K "$d" gro off >/dev/null 2>&1 || true; done
  fi
  ip netns exec "$C" ethtool -K "${P}c$i" tx off tso off gso off gro off >/dev/null 2>&1 || true
  ip netns exec "$S" ethtool -K "${P}s$i" tx off tso off gso off gro off >/dev/null 2>&1 || true
  ip -n "$C" addr add "10.77.$i.1/24" dev "${P}c$i"
  ip -n "$S" addr add "10.77.$i.2/24" dev "${P}s$i"
  ip -n "$C" link set "${P}c$i" up
  ip -n "$S" link set "${P}s$i" up
  if [ "$DELAYLINE" != none ]; then
    ip netns exec "$W" "$DELAYLINE" --a "w${i}a" --b "w${i}b" --ab "${SPECS[$i]}" --ba "${SPECS[$i]}" --realtime >/dev/null 2>&1 &
    DL_PIDS+=($!)
  fi
  ip netns exec "$S" tc qdisc add dev "${P}s$i" root tbf rate "${RATES[$i]}mbit" burst 32k latency 40ms
  ip netns exec "$C" tc qdisc add dev "${P}c$i" root tbf rate "${RATES[$i]}mbit" burst 32k latency 40ms
done
for i in 1 2; do  # the delay line sets its ends up when it is ready
  for _ in $(seq 100); do ip -n "$C" -o link show "${P}c$i" | grep -q LOWER_UP && ip -n "$S" -o link show "${P}s$i" | grep -q LOWER_UP && break; sleep 0.1; done
done
# Second path: source-routed, announced to the in-kernel PM as a 'subflow' endpoint.
ip -n "$C" rule add from 10.77.2.1 table 12
ip -n "$C" route add 10.77.1.0/24 via 10.77.2.2 dev "${P}c2" table 12
ip -n "$S" route add 10.77.2.0/24 dev "${P}s2" 2>/dev/null || true
ip -n "$C" mptcp endpoint add 10.77.2.1 dev "${P}c2" subflow

PY=$(mktemp)
cat > "$PY" <<'PYEOF'
import os, socket, sys, time, json, threading
IPPROTO_MPTCP = 262
role = sys.argv[1]
if role == 'server':
    size = int(sys.argv[2])
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(('0.0.0.0', 8177)); ls.listen(8)
    print('listening', flush=True)
    s, _ = ls.accept()
    buf = bytes(range(256)) * 256
    left = size
    while left > 0:
        left -= s.send(buf[:min(left, len(buf))])
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    s.close()
else:
    size, mode, wait = int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
    s.settimeout(wait)
    t0 = time.monotonic()
    s.connect(('10.77.1.2', 8177))
    if mode == 'early':
        s.shutdown(socket.SHUT_WR)
    elif mode == 'hold':
        # The remedy: hold the FIN until a second subflow is established at both ends, i.e. has
        # received bytes (the server schedules data on a join only once it accepted it), at most
        # 3 s. MPTCP_TCPINFO gives one struct tcp_info per subflow (tcpi_bytes_received at 128).
        import ctypes, struct
        libc = ctypes.CDLL(None, use_errno=True)
        TI = 232
        while time.monotonic() - t0 < float(os.environ.get('HOLD_MAX_S', '3')):
            buf = ctypes.create_string_buffer(struct.pack('IIII', 16, 0, 0, TI) + bytes(TI * 8))
            ln = ctypes.c_uint32(len(buf))
            if libc.getsockopt(s.fileno(), 284, 2, buf, ctypes.byref(ln)) == 0:  # SOL_MPTCP, MPTCP_TCPINFO
                n = struct.unpack_from('I', buf.raw, 4)[0]
                got_rx = [struct.unpack_from('Q', buf.raw, 16 + i * TI + 128)[0] for i in range(min(n, 8))]
                if n >= 2 and all(x > 0 for x in got_rx):
                    break
            time.sleep(0.005)
        s.shutdown(socket.SHUT_WR)
    print('connected', flush=True)
    # One second after the FIN (or, for 'late', after connect) the initial subflow's path dies
    # on both sides: `CUT` is the command that takes it down.
    got, last, at_cut = 0, t0, []
    def cut():
        time.sleep(1)
        at_cut.append(got)
        os.system(os.environ['CUT'])
    threading.Thread(target=cut, daemon=True).start()
    try:
        while True:
            d = s.recv(1 << 16)
            if not d:
                break
            got += len(d); last = time.monotonic()
    except socket.timeout:
        pass
    done = got == size
    if mode == 'late':
        s.shutdown(socket.SHUT_WR)
    print(json.dumps({'mode': mode, 'received': got, 'expected': size, 'complete': done,
                      'received_at_cut': at_cut[0] if at_cut else None,
                      'elapsed_s': round(time.monotonic() - t0, 2),
                      'last_byte_s': round(last - t0, 2)}), flush=True)
    s.close()
PYEOF

counters() { ip netns exec "$1" nstat -az 2>/dev/null | awk '$1 ~ /^(MPTcpExt|Tcp[A-Z]|TcpExtTCP(Timeouts|RetransFail|LossProbes|AbortOnTimeout))/ {print $1, $2}'; }
counters "$C" > "$PY.c0"; counters "$S" > "$PY.s0"
ip netns exec "$S" python3 "$PY" server "$SIZE" > "$PY.srv" &
SRV=$!
for _ in $(seq 50); do grep -q listening "$PY.srv" 2>/dev/null && break; sleep 0.1; done
CUT="ip -n $C link set ${P}c1 down; ip -n $S link set ${P}s1 down" ip netns exec "$C" python3 "$PY" client "$SIZE" "$MODE" "$WAIT" > "$PY.cli" &
CLI=$!
for _ in $(seq 100); do grep -q connected "$PY.cli" 2>/dev/null && break; sleep 0.1; done
sleep 0.5
echo "client sockets before the cut:"
ip netns exec "$C" ss -tnH | awk '{print "  " $1, $4, $5}' || true
wait "$CLI" || true
grep -v connected "$PY.cli"
echo "counters that changed (client | server):"
counters "$C" > "$PY.c1"; counters "$S" > "$PY.s1"
join -a2 "$PY.c0" "$PY.c1" | awk '$2 != $3 && NF==3 {printf "  client %-28s %d\n", $1, $3-$2} NF==2 && $2!=0 {printf "  client %-28s %d\n", $1, $2}'
join -a2 "$PY.s0" "$PY.s1" | awk '$2 != $3 && NF==3 {printf "  server %-28s %d\n", $1, $3-$2} NF==2 && $2!=0 {printf "  server %-28s %d\n", $1, $2}'
kill "$SRV" 2>/dev/null || true
wait "$SRV" 2>/dev/null || true
rm -f "$PY" "$PY".*
