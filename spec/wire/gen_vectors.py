#!/usr/bin/env python3
"""Regenerates vectors.json from PROTOCOL.md.

This is a second, independent encoder written from the document (the Go
implementation in sensor/capture/socket is the first); the Go tests and the
Swift tests decode every vector and re-encode its fields, so both must agree
with this file byte for byte.

    python3 spec/wire/gen_vectors.py > spec/wire/vectors.json
"""

import ipaddress
import json
import struct

HELLO, FLOW_OPEN, DATA, FLOW_CLOSE, SYSTEM, CREDIT, GOODBYE = range(1, 8)
NAMES = {1: "HELLO", 2: "FLOW_OPEN", 3: "DATA", 4: "FLOW_CLOSE", 5: "SYSTEM", 6: "CREDIT", 7: "GOODBYE"}


def s(text):
    b = text.encode() if isinstance(text, str) else text
    return struct.pack(">H", len(b)) + b


def addr(text):
    if not text:
        return b"\x00"
    host, port = text.rsplit(":", 1)
    ip = ipaddress.ip_address(host.strip("[]"))
    fam = 4 if ip.version == 4 else 6
    return bytes([fam]) + ip.packed + struct.pack(">H", int(port))


def frame(typ, body):
    return struct.pack(">IB", len(body) + 1, typ) + body


def hello(f, extra=b""):
    return (b"OISPWIRE" + struct.pack(">HHII", f["version"], f["flags"], f["max_frame"], f["credit"])
            + s(f["name"]) + extra)


def flow_open(f):
    return (struct.pack(">QQBBIIIH", int(f["flow_id"]), int(f["started"]), f["transport"], f["flags"],
                        f["pid"], f["ppid"], f["uid"], f["remote_port"])
            + addr(f["local"]) + addr(f["remote"])
            + b"".join(s(f[k]) for k in ("process_path", "process_name", "bundle_id", "signing_id",
                                          "remote_host", "sni", "alpn", "capture_method")))


def data(f):
    return (struct.pack(">QBBQQQ", int(f["flow_id"]), f["dir"], f["flags"], int(f["stream_id"]),
                        int(f["seq"]), int(f["at"])) + bytes.fromhex(f["payload_hex"]))


def flow_close(f):
    return struct.pack(">QQBQQQQ", int(f["flow_id"]), int(f["at"]), f["reason"], int(f["bytes_c2s"]),
                       int(f["bytes_s2c"]), int(f["dropped_c2s"]), int(f["dropped_s2c"]))


def system(f):
    return struct.pack(">Q", int(f["at"])) + f["json"].encode()


def credit(f):
    return struct.pack(">I", f["grant"])


def goodbye(f):
    return struct.pack(">H", f["code"]) + s(f["message"])


ENC = {HELLO: hello, FLOW_OPEN: flow_open, DATA: data, FLOW_CLOSE: flow_close, SYSTEM: system,
       CREDIT: credit, GOODBYE: goodbye}

T0 = "1703680000000000000"

frames = []


def add(name, typ, fields, note="", body=None):
    b = ENC[typ](fields) if body is None else body
    v = {"name": name, "type": NAMES[typ], "hex": frame(typ, b).hex(), "fields": fields}
    if note:
        v["note"] = note
    frames.append(v)


add("hello_client", HELLO, {"version": 1, "flags": 0, "max_frame": 4096, "credit": 0,
                            "name": "com.oisp.networkextension 1.0"})
add("hello_server", HELLO, {"version": 1, "flags": 0, "max_frame": 1048576, "credit": 4194304,
                            "name": "oisp-sensor 0.1.0"})
hello_ext = {"version": 2, "flags": 0, "max_frame": 16777216, "credit": 0, "name": "future-client"}
add("hello_future_with_trailing_bytes", HELLO, hello_ext,
    note="a version-2 client may append fields; a version-1 reader ignores them",
    body=hello(hello_ext, extra=b"\x01\x02\x03"))
add("flow_open_tcp_tls_ipv4", FLOW_OPEN, {
    "flow_id": "1", "started": T0, "transport": 0, "flags": 1, "pid": 12345, "ppid": 1234, "uid": 501,
    "remote_port": 443, "local": "192.168.1.20:54321", "remote": "162.159.140.245:443",
    "process_path": "/usr/bin/python3", "process_name": "python3", "bundle_id": "", "signing_id": "",
    "remote_host": "api.openai.com", "sni": "api.openai.com", "alpn": "h2", "capture_method": ""})
add("flow_open_quic_ipv6_resumed", FLOW_OPEN, {
    "flow_id": "72623859790382856", "started": "0", "transport": 1, "flags": 3, "pid": 0, "ppid": 0,
    "uid": 4294967295, "remote_port": 443, "local": "", "remote": "[2606:4700::6810:1]:443",
    "process_path": "/Applications/Claude.app/Contents/MacOS/Claude", "process_name": "Claude",
    "bundle_id": "com.anthropic.claudefordesktop", "signing_id": "com.anthropic.claudefordesktop",
    "remote_host": "api.anthropic.com", "sni": "api.anthropic.com", "alpn": "h3",
    "capture_method": "network_extension"})
add("flow_open_plain_http_utf8", FLOW_OPEN, {
    "flow_id": "2", "started": T0, "transport": 0, "flags": 0, "pid": 77, "ppid": 1, "uid": 0,
    "remote_port": 11434, "local": "127.0.0.1:40000", "remote": "127.0.0.1:11434",
    "process_path": "/home/zoë/bin/agent", "process_name": "agent", "bundle_id": "", "signing_id": "",
    "remote_host": "localhost", "sni": "", "alpn": "", "capture_method": "mitm_proxy"})
add("data_c2s_text", DATA, {
    "flow_id": "1", "dir": 0, "flags": 0, "stream_id": "0", "seq": "0", "at": "1703680000000100000",
    "payload_hex": b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\n\r\n".hex()})
add("data_s2c_binary_fin", DATA, {
    "flow_id": "1", "dir": 1, "flags": 1, "stream_id": "0", "seq": "812", "at": "1703680000000200000",
    "payload_hex": "00ff0a7b80"})
add("data_fin_empty", DATA, {
    "flow_id": "1", "dir": 0, "flags": 1, "stream_id": "0", "seq": "60", "at": "0", "payload_hex": ""})
add("data_quic_stream_gap", DATA, {
    "flow_id": "72623859790382856", "dir": 0, "flags": 0, "stream_id": "4", "seq": "18446744073709551000",
    "at": T0, "payload_hex": "0103aabbcc"},
    note="seq may be anywhere in u64; a seq beyond the next expected offset reports a gap")
add("flow_close_eof", FLOW_CLOSE, {
    "flow_id": "1", "at": "1703680001000000000", "reason": 0, "bytes_c2s": "812", "bytes_s2c": "2048",
    "dropped_c2s": "0", "dropped_s2c": "100"})
add("flow_close_other_reason", FLOW_CLOSE, {
    "flow_id": "9", "at": "0", "reason": 200, "bytes_c2s": "0", "bytes_s2c": "0",
    "dropped_c2s": "0", "dropped_s2c": "0"}, note="unknown reasons decode and mean 'other'")
add("system_exec", SYSTEM, {
    "at": T0,
    "json": '{"kind":"process.exec","pid":4242,"ppid":1,"uid":501,"exe":"/usr/bin/curl",'
            '"args":["curl","https://api.openai.com/v1/models"],"cwd":"/tmp"}'})
add("credit", CREDIT, {"grant": 65536})
add("goodbye_protocol_error", GOODBYE, {"code": 1, "message": "DATA: unknown flow 9"})

# Extension frame: skipped by receivers that do not know it.
frames.append({"name": "extension_frame_skipped", "type": "EXTENSION", "hex": frame(0x80, b"abc").hex(),
               "fields": {"frame_type": 128, "body_hex": "616263"}})

invalid = []


def bad(name, raw, code, note, max_frame=4096):
    invalid.append({"name": name, "hex": raw.hex(), "max_frame": max_frame, "error": code, "note": note})


good_hello = hello({"version": 1, "flags": 0, "max_frame": 4096, "credit": 0, "name": "x"})
bad("zero_length", b"\x00\x00\x00\x00", "protocol_error", "length must be at least 1")
bad("too_large_before_hello", struct.pack(">IB", 4097, HELLO), "frame_too_large",
    "limit is 4096 until the receiver's HELLO")
bad("too_large_after_hello", struct.pack(">IB", 65537, DATA), "frame_too_large",
    "length is checked before the body is read", max_frame=65536)
bad("truncated_frame", struct.pack(">IB", 10, CREDIT) + b"\x00\x00", "truncated",
    "stream ends inside a frame")
bad("hello_bad_magic", frame(HELLO, b"OISPWIRX" + good_hello[8:]), "protocol_error", "magic")
bad("hello_version_0", frame(HELLO, hello({"version": 0, "flags": 0, "max_frame": 4096, "credit": 0,
                                           "name": "x"})), "version_unsupported", "version 0 is invalid")
bad("hello_max_frame_small", frame(HELLO, hello({"version": 1, "flags": 0, "max_frame": 1024,
                                                 "credit": 0, "name": "x"})), "protocol_error",
    "max_frame below 4096")
bad("hello_truncated", frame(HELLO, good_hello[:12]), "protocol_error", "body ends inside a field")
bad("unknown_type", frame(0x08, b""), "protocol_error", "types 0x08-0x7F are not defined")
bad("type_zero", frame(0x00, b""), "protocol_error", "type 0 is not defined")
base_open = {"flow_id": "1", "started": "0", "transport": 0, "flags": 0, "pid": 1, "ppid": 0, "uid": 0,
             "remote_port": 443, "local": "", "remote": "", "process_path": "", "process_name": "",
             "bundle_id": "", "signing_id": "", "remote_host": "", "sni": "", "alpn": "",
             "capture_method": ""}
bad("flow_open_id_zero", frame(FLOW_OPEN, flow_open(dict(base_open, flow_id="0"))), "protocol_error",
    "flow_id 0")
bad("flow_open_bad_transport", frame(FLOW_OPEN, flow_open(dict(base_open, transport=2))),
    "protocol_error", "transport 2")
bad("flow_open_sni_too_long", frame(FLOW_OPEN, flow_open(dict(base_open, sni="a" * 257))),
    "protocol_error", "sni limit 256")
bad("flow_open_bad_utf8", frame(FLOW_OPEN, flow_open(dict(base_open, process_path=b"\xff\xfe"))),
    "protocol_error", "strings are UTF-8")
ok_open = flow_open(base_open)
bad("flow_open_bad_family", frame(FLOW_OPEN, ok_open[:32] + b"\x05" + ok_open[33:]), "protocol_error",
    "address family 5")
bad("flow_open_truncated_string", frame(FLOW_OPEN, ok_open[:34] + b"\x00\x10abc"), "protocol_error",
    "string length beyond the body")
base_data = {"flow_id": "1", "dir": 0, "flags": 0, "stream_id": "0", "seq": "0", "at": "0",
             "payload_hex": "41"}
bad("data_empty_without_fin", frame(DATA, data(dict(base_data, payload_hex=""))), "protocol_error",
    "empty payload needs FIN")
bad("data_bad_dir", frame(DATA, data(dict(base_data, dir=2))), "protocol_error", "dir 2")
bad("data_unknown_flag", frame(DATA, data(dict(base_data, flags=2))), "protocol_error", "flag bit 1")
bad("data_short_header", frame(DATA, data(base_data)[:20]), "protocol_error", "fixed part is 34 bytes")
bad("credit_zero", frame(CREDIT, credit({"grant": 0})), "protocol_error", "grant 0")
bad("credit_trailing", frame(CREDIT, credit({"grant": 1}) + b"\x00"), "protocol_error",
    "CREDIT has an exact layout")

print(json.dumps({"protocol_version": 1, "frames": frames, "invalid": invalid}, indent=1, ensure_ascii=False))
