#!/usr/bin/env python3
"""Standalone MPTCP upload-across-handover check (no duocell). Needs root, iproute2 and ss.

Two namespaces, `<prefix>-a` (the sender, in-kernel path manager with a subflow endpoint on
its second link) and `<prefix>-b` (the receiver), joined by two veth links shaped with tbf
(20 and 30 Mbit/s, as the benchmark's `ideal` world). The sender uploads the position pattern
(every 8-byte word is its own offset, little-endian) for DURATION seconds over one MPTCP
connection; the receiver reads it with splice(socket -> pipe) + read(pipe), as duocell's relay
thread does, and checks every byte. Every CYCLE seconds the second link goes down on both ends,
the receiver destroys the subflow on it (`ss -K`, SOCK_DESTROY: what duocell's handover does),
and half a second later the link comes back and the sender's endpoint is re-added so that a new
subflow joins. On the first wrong byte it prints the offset, the source offset the bytes there
came from, and the MPTCP counters (nstat) of both ends, and exits 1.

  python3 scripts/mptcp-handover-repro.py [--duration 60] [--cycle 1.5] [--prefix uplr] [--read recv|splice] [--backup]
--backup first marks the subflow backup from the receiver (MP_PRIO), as duocell's handover does.
"""
import argparse
import array
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time

IPPROTO_MPTCP = 262


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True).stdout


def ns(name, *args, check=True):
    return sh('ip', 'netns', 'exec', name, *args, check=check)


def pattern(off, n):
    """n bytes of the position pattern from offset off (off, n multiples of 8)."""
    return array.array('Q', range(off, off + n, 8)).tobytes()


def counters(name):
    try:
        j = json.loads(ns(name, 'nstat', '-az', '--json', check=False))
        return j.get('kernel', {})
    except ValueError:
        return {}


def delta(a, b):
    return ' '.join(f'{k}={v - a.get(k, 0)}' for k, v in sorted(b.items()) if v != a.get(k, 0) and (k.startswith('MPTcp') or 'Abort' in k))


def setup(p):
    a, b = f'{p}-a', f'{p}-b'
    for n in (a, b):
        sh('ip', 'netns', 'add', n)
        ns(n, 'ip', 'link', 'set', 'lo', 'up')
        ns(n, 'sysctl', '-qw', 'net.mptcp.enabled=1')
        ns(n, 'ip', 'mptcp', 'limits', 'set', 'subflows', '4', 'add_addr_accepted', '4')
    for i, rate in ((1, 20), (2, 30)):
        sh('ip', 'link', 'add', f'{p}a{i}', 'netns', a, 'type', 'veth', 'peer', 'name', f'{p}b{i}', 'netns', b)
        for n, side, host in ((a, 'a', 1), (b, 'b', 2)):
            dev = f'{p}{side}{i}'
            ns(n, 'ip', 'addr', 'add', f'10.90.{i}.{host}/24', 'dev', dev)
            ns(n, 'ip', 'link', 'set', dev, 'up')
            ns(n, 'tc', 'qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', f'{rate}mbit', 'burst', '32k', 'latency', '40ms')
    ns(a, 'ip', 'rule', 'add', 'from', '10.90.2.1', 'table', '12')
    ns(a, 'ip', 'route', 'add', 'default', 'dev', f'{p}a2', 'table', '12')
    ns(a, 'ip', 'mptcp', 'endpoint', 'add', '10.90.2.1', 'dev', f'{p}a2', 'id', '2', 'subflow')
    return a, b


def teardown(p):
    for n in (f'{p}-a', f'{p}-b'):
        sh('ip', 'netns', 'del', n, check=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--duration', type=float, default=60)
    ap.add_argument('--cycle', type=float, default=1.5)
    ap.add_argument('--prefix', default='uplr')
    ap.add_argument('--read', choices=('recv', 'splice'), default='splice')
    ap.add_argument('--backup', action='store_true', help='mark the dying subflow backup (MP_PRIO) from the receiver first, as duocell does')
    ap.add_argument('--role', choices=('run', 'sender', 'receiver'), default='run')
    o = ap.parse_args()
    if o.role == 'sender':
        return sender(o)
    if o.role == 'receiver':
        return receiver(o)
    p = o.prefix
    teardown(p)
    a, b = setup(p)
    if o.backup:
        # an endpoint on the receiver's second address: `change ... backup` sends MP_PRIO on its subflows
        ns(b, 'ip', 'mptcp', 'endpoint', 'add', '10.90.2.2', 'dev', f'{p}b2', 'id', '5')
    try:
        before = (counters(a), counters(b))
        rx = subprocess.Popen(['ip', 'netns', 'exec', b, sys.executable, __file__, '--role', 'receiver', '--read', o.read], stdout=subprocess.PIPE, text=True)
        rx.stdout.readline()  # listening
        tx = subprocess.Popen(['ip', 'netns', 'exec', a, sys.executable, __file__, '--role', 'sender', '--duration', str(o.duration)])
        cuts = 0
        time.sleep(1.0)
        while tx.poll() is None and rx.poll() is None:
            if o.backup:
                ns(b, 'ip', 'mptcp', 'endpoint', 'change', 'id', '5', 'backup', check=False)
            for n, side in ((a, 'a'), (b, 'b')):
                ns(n, 'ip', 'link', 'set', f'{p}{side}2', 'down')
            # the receiver aborts the dead path's subflows at once, as duocell's handover does
            ns(b, 'ss', '-K', 'dst', '10.90.2.1', check=False)
            cuts += 1
            time.sleep(0.5)
            for n, side in ((a, 'a'), (b, 'b')):
                ns(n, 'ip', 'link', 'set', f'{p}{side}2', 'up')
            ns(a, 'ip', 'route', 'replace', 'default', 'dev', f'{p}a2', 'table', '12')
            if o.backup:
                ns(b, 'ip', 'mptcp', 'endpoint', 'change', 'id', '5', 'nobackup', check=False)
            ns(a, 'ip', 'mptcp', 'endpoint', 'delete', 'id', '2', check=False)
            ns(a, 'ip', 'mptcp', 'endpoint', 'add', '10.90.2.1', 'dev', f'{p}a2', 'id', '2', 'subflow', check=False)
            time.sleep(max(0.1, o.cycle - 0.5))
        tx.wait()
        out = rx.communicate(timeout=30)[0]
        after = (counters(a), counters(b))
        print(out.strip())
        print(f'cuts: {cuts}')
        print(f'sender counters: {delta(before[0], after[0])}')
        print(f'receiver counters: {delta(before[1], after[1])}')
        return rx.returncode
    finally:
        teardown(p)


def sender(o):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
    s.connect(('10.90.1.2', 7000))
    off = 0
    chunk = 256 * 1024
    end = time.monotonic() + o.duration
    while time.monotonic() < end:
        s.sendall(pattern(off, chunk))
        off += chunk
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
    s.close()
    return 0


def receiver(o):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(('0.0.0.0', 7000))
    ls.listen(1)
    print('listening', flush=True)
    c, _ = ls.accept()
    pr, pw = os.pipe()
    got = 0
    carry = b''
    bad = None
    while True:
        if o.read == 'splice':
            n = os.splice(c.fileno(), pw, 65536)
            data = os.read(pr, n) if n > 0 else b''
            while len(data) < n:
                data += os.read(pr, n - len(data))
        else:
            data = c.recv(65536)
        if not data:
            break
        buf = carry + data
        whole = len(buf) - len(buf) % 8
        if bad is None and buf[:whole] != pattern(got, whole):
            want = pattern(got, whole)
            i = next(k for k in range(whole) if buf[k] != want[k])
            w = i - i % 8
            seen = struct.unpack_from('<Q', buf, w)[0]
            bad = f'first bad byte at offset {got + i}: the word at {got + w} holds {seen} (source offset {seen - (got + w):+d} from here)'
        got += whole
        carry = buf[whole:]
    c.shutdown(socket.SHUT_WR)
    c.close()
    print(json.dumps({'received': got + len(carry), 'fault': bad}), flush=True)
    return 1 if bad is not None else 0


if __name__ == '__main__':
    sys.exit(main())
