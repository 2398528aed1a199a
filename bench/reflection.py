#!/usr/bin/env python3
"""Reflection ratios of a STUN/TURN server: how many bytes an unauthenticated
request gets back per byte sent, over UDP (what a spoofed-source attacker uses).

    python3 bench/reflection.py HOST:PORT [HOST:PORT ...]

Each server is sent the smallest requests a client can send (no SOFTWARE, no
FINGERPRINT unless named) and the answer sizes are printed with their ratios.
bench/reflection_vs_coturn.sh runs it against WebCall and coturn in one sitting.
"""
import os
import socket
import struct
import sys
import zlib

COOKIE = 0x2112A442


def message(typ, attrs=b"", fingerprint=False):
    txid = os.urandom(12)
    body = attrs
    if fingerprint:
        head = struct.pack("!HHI", typ, len(body) + 8, COOKIE) + txid
        crc = (zlib.crc32(head + body) ^ 0x5354554E) & 0xFFFFFFFF
        body += struct.pack("!HHI", 0x8028, 4, crc)
    return struct.pack("!HHI", typ, len(body), COOKIE) + txid + body


REQUESTED_TRANSPORT_UDP = struct.pack("!HHB3x", 0x0019, 4, 17)

CASES = [
    ("Binding", message(0x0001)),
    ("Binding + FINGERPRINT", message(0x0001, fingerprint=True)),
    ("Allocate (no credentials)", message(0x0003, REQUESTED_TRANSPORT_UDP)),
    ("Allocate + FINGERPRINT", message(0x0003, REQUESTED_TRANSPORT_UDP, fingerprint=True)),
    ("Refresh (no allocation)", message(0x0004)),
]


def probe(addr, request):
    host, port = addr.rsplit(":", 1)
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(request, (host.strip("[]"), int(port)))
        try:
            answer, _ = sock.recvfrom(65536)
        except socket.timeout:
            return None
    return answer


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for addr in sys.argv[1:]:
        print(f"{addr}")
        for name, request in CASES:
            answer = probe(addr, request)
            if answer is None:
                print(f"  {name:28} {len(request):4} B -> no answer")
                continue
            code = ""
            typ = struct.unpack("!H", answer[:2])[0]
            if typ & 0x0110 == 0x0110:
                at = 20
                while at + 4 <= len(answer):
                    t, n = struct.unpack("!HH", answer[at:at + 4])
                    if t == 0x0009:
                        v = answer[at + 4:at + 4 + n]
                        code = f" ({v[2] * 100 + v[3]})"
                    at += 4 + ((n + 3) & ~3)
            print(f"  {name:28} {len(request):4} B -> {len(answer):4} B{code:6}  ratio {len(answer) / len(request):.2f}")


if __name__ == "__main__":
    main()
