#!/usr/bin/env python3
"""A TCP-MD5 (RFC 2385) echo peer for steering tests: Linux TCP_MD5SIG from Python's socket module.
   md5peer.py server BIND PORT PEER_ADDR KEY   |   md5peer.py client HOST PORT KEY"""
import socket, struct, sys

TCP_MD5SIG = 14

def md5sig(peer, key):
    fam = socket.AF_INET6 if ':' in peer else socket.AF_INET
    if fam == socket.AF_INET:
        sa = struct.pack('=HH4s', socket.AF_INET, 0, socket.inet_pton(fam, peer))
    else:
        sa = struct.pack('=HHI16sI', socket.AF_INET6, 0, 0, socket.inet_pton(fam, peer), 0)
    sa = sa.ljust(128, b'\0')
    k = key.encode()
    return sa + struct.pack('=BBHI', 0, 0, len(k), 0) + k.ljust(80, b'\0')

mode = sys.argv[1]
if mode == 'server':
    bind, port, peer, key = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, md5sig(peer, key))
    s.bind((bind, port)); s.listen(8)
    print('listening', flush=True)
    while True:
        c, a = s.accept()
        d = c.recv(100)
        c.sendall(b'md5-echo:' + d + (' from %s' % a[0]).encode()); c.close()
else:
    host, port, key = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, md5sig(host, key))
    s.settimeout(5)
    s.connect((host, port)); s.sendall(b'hello'); print(s.recv(200).decode(), flush=True)
