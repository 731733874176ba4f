"""Pushes TLS plaintext through OpenSSL as fast as it can (or at a given
rate) without any socket: a client and a server SSLObject in this process,
joined by memory BIOs. Every application write is one SSL_write_ex on the
client and one SSL_read_ex on the server, so a capture sees both.

Usage: membio.py CA CERT KEY TOTAL_BYTES CHUNK_BYTES RATE_BYTES_PER_S
(RATE 0: unlimited). Prints "<seconds> <bytes>" when done.
"""

import ssl
import sys
import time


def pump(src, dst):
    data = src.read()
    if data:
        dst.write(data)


def main():
    ca, cert, key = sys.argv[1:4]
    total, chunk, rate = (int(x) for x in sys.argv[4:7])
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(cert, key)
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.load_verify_locations(ca)
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = cctx.wrap_bio(c_in, c_out, server_hostname="bench.oisp.test")
    server = sctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    while not (done["c"] and done["s"]):
        for name, obj in (("c", client), ("s", server)):
            if done[name]:
                continue
            try:
                obj.do_handshake()
                done[name] = True
            except ssl.SSLWantReadError:
                pass
        pump(c_out, s_in)
        pump(s_out, c_in)
    payload = b"x" * chunk
    sent = 0
    start = time.monotonic()
    while sent < total:
        client.write(payload)
        pump(c_out, s_in)
        got = 0
        while got < chunk:
            got += len(server.read(chunk - got))
        sent += chunk
        if rate > 0:
            ahead = sent / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
    print(f"{time.monotonic() - start:.6f} {sent}")


if __name__ == "__main__":
    main()
