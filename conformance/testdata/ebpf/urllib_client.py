"""Replays recorded requests with Python's urllib (OpenSSL through the _ssl
module, which calls SSL_write_ex/SSL_read_ex).

Reads one JSON document on stdin:
  {"addr": "127.0.0.1:PORT", "ca": "/path/ca.pem",
   "interactions": [{"method": "POST", "url": "https://host/path",
                     "headers": [["Name", "value"], ...], "body": "<base64>"}]}
and performs every interaction in order, each over its own TLS connection to
addr with the recorded host as server_hostname (SNI and certificate check)
and as the Host header. Prints one JSON line per interaction:
  {"status": 200, "version": "1.1", "body": "<base64>"}
Exits 1 with a message on stderr when an interaction cannot be performed.
"""

import base64
import http.client
import json
import ssl
import sys
import urllib.error
import urllib.request


def make_handler(addr, context):
    host, port = addr.rsplit(":", 1)

    class LoopbackConnection(http.client.HTTPSConnection):
        # Keep the recorded host for SNI and Host; dial the replay server.
        def connect(self):
            import socket

            sock = socket.create_connection((host, int(port)), self.timeout)
            self.sock = context.wrap_socket(sock, server_hostname=self.host)

    class LoopbackHandler(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(LoopbackConnection, req, context=context)

    return LoopbackHandler()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    # A recorded redirect is the answer: hand it back instead of following.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def main():
    spec = json.load(sys.stdin)
    context = ssl.create_default_context(cafile=spec["ca"])
    context.set_alpn_protocols(["http/1.1"])
    opener = urllib.request.build_opener(make_handler(spec["addr"], context), NoRedirect())
    # No default User-Agent: send only what was recorded.
    opener.addheaders = []
    for i, it in enumerate(spec["interactions"]):
        body = base64.b64decode(it.get("body") or "")
        req = urllib.request.Request(
            it["url"], data=body if body else None, method=it["method"]
        )
        for name, value in it.get("headers") or []:
            req.add_header(name, value)
        try:
            resp = opener.open(req, timeout=120)
        except urllib.error.HTTPError as err:
            resp = err  # a recorded failure is an answer, not an error
        except Exception as err:  # noqa: BLE001 - report any failure
            print(f"interaction {i + 1}: {err!r}", file=sys.stderr)
            return 1
        with resp:
            data = resp.read()
            raw = resp.fp if isinstance(resp, urllib.error.HTTPError) else resp
            version = {10: "1.0", 11: "1.1"}.get(getattr(raw, "version", 0), "?")
            print(
                json.dumps(
                    {
                        "status": resp.status,
                        "version": version,
                        "body": base64.b64encode(data).decode(),
                    }
                ),
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
