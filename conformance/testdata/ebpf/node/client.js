'use strict';
// Replays recorded requests with Node.js, whose OpenSSL is linked into the
// node binary. Usage: node client.js fetch|http2|openai < spec.json
//
// The spec on stdin is
//   {"addr": "127.0.0.1:PORT", "ca": "/path/ca.pem",
//    "interactions": [{"method": "POST", "url": "https://host/path",
//                      "headers": [["Name", "value"], ...], "body": "<base64>"}]}
// Every interaction is performed in order; connections go to addr with the
// recorded host as SNI and Host/:authority. One JSON line per interaction
// goes to stdout:
//   {"status": 200, "version": "1.1", "body": "<base64>"}
// (openai mode: {"status": ..., "sdk_events": n, "sdk_error": "...",
// "body": "<base64 of the JSON the SDK parsed>"}). Exit code 1 on failure.
//
// fetch:  undici's fetch with an Agent whose connect dials addr (HTTP/1.1).
// http2:  the node:http2 module, one session per authority, reused.
// openai: the official openai SDK (chat completions and responses; not
//         embeddings, whose SDK call asks for base64 vectors unless told
//         otherwise) over the same undici Agent.

const fs = require('node:fs');
const http2 = require('node:http2');
const tls = require('node:tls');

function readStdin() {
  return JSON.parse(fs.readFileSync(0, 'utf8'));
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function dialer(spec, alpn) {
  const [host, port] = splitAddr(spec.addr);
  const ca = fs.readFileSync(spec.ca);
  return (servername) => tls.connect({ host, port, servername, ca, ALPNProtocols: [alpn] });
}

function splitAddr(addr) {
  const i = addr.lastIndexOf(':');
  return [addr.slice(0, i), Number(addr.slice(i + 1))];
}

function undiciAgent(spec) {
  const { Agent } = require('undici');
  const dial = dialer(spec, 'http/1.1');
  return new Agent({
    connect(opts, callback) {
      const socket = dial(opts.servername || opts.hostname);
      socket.once('secureConnect', () => callback(null, socket));
      socket.once('error', (err) => callback(err, null));
    },
  });
}

async function runFetch(spec) {
  const { fetch } = require('undici');
  const dispatcher = undiciAgent(spec);
  for (const it of spec.interactions) {
    const body = it.body ? Buffer.from(it.body, 'base64') : undefined;
    const res = await fetch(it.url, {
      method: it.method,
      headers: it.headers || [],
      body: body && body.length > 0 ? body : undefined,
      redirect: 'manual',
      dispatcher,
    });
    const data = Buffer.from(await res.arrayBuffer());
    emit({ status: res.status, version: '1.1', body: data.toString('base64') });
  }
  await dispatcher.close();
}

async function runHTTP2(spec) {
  const dial = dialer(spec, 'h2');
  const sessions = new Map();
  const sessionFor = (u) => {
    let s = sessions.get(u.host);
    if (!s) {
      s = http2.connect(`https://${u.host}`, { createConnection: () => dial(u.hostname) });
      s.on('error', () => {}); // surfaced through the request
      sessions.set(u.host, s);
    }
    return s;
  };
  for (const it of spec.interactions) {
    const u = new URL(it.url);
    const headers = { ':method': it.method, ':path': u.pathname + u.search, ':authority': u.host, ':scheme': 'https' };
    for (const [k, v] of it.headers || []) {
      const name = k.toLowerCase();
      if (name in headers) {
        headers[name] = [].concat(headers[name], v);
      } else {
        headers[name] = v;
      }
    }
    const body = it.body ? Buffer.from(it.body, 'base64') : Buffer.alloc(0);
    const result = await new Promise((resolve, reject) => {
      const req = sessionFor(u).request(headers, { endStream: body.length === 0 });
      let status = 0;
      const chunks = [];
      req.on('response', (h) => { status = h[':status']; });
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => resolve({ status, version: '2', body: Buffer.concat(chunks).toString('base64') }));
      req.on('error', reject);
      if (body.length > 0) req.end(body);
    });
    emit(result);
  }
  for (const s of sessions.values()) {
    await new Promise((resolve) => s.close(resolve));
  }
}

// The SDK operations the openai mode re-issues, by path suffix.
const openaiOps = [
  ['chat/completions', (c) => c.chat.completions],
  ['responses', (c) => c.responses],
];

const credentialHeaders = ['authorization', 'x-api-key', 'api-key'];

async function runOpenAI(spec) {
  const { fetch } = require('undici');
  const OpenAI = require('openai');
  const dispatcher = undiciAgent(spec);
  for (const it of spec.interactions) {
    const u = new URL(it.url);
    const op = openaiOps.find(([suffix]) => u.pathname.endsWith('/' + suffix));
    if (!op) throw new Error(`${it.url}: not an operation the openai SDK mode re-issues`);
    const baseURL = `${u.protocol}//${u.host}${u.pathname.slice(0, -op[0].length - 1)}`;
    // Recorded headers go out as recorded; the recorded credential
    // headers (or none) replace the SDK's placeholder key on the wire.
    const defaultHeaders = {};
    const credentials = [];
    for (const [k, v] of it.headers || []) {
      if (credentialHeaders.includes(k.toLowerCase())) {
        credentials.push([k, v]);
      } else {
        defaultHeaders[k] = v;
      }
    }
    const client = new OpenAI({
      apiKey: 'sk-oisp-conformance-placeholder',
      baseURL,
      defaultHeaders,
      defaultQuery: Object.fromEntries(u.searchParams),
      maxRetries: 0,
      timeout: 120000,
      fetch: (url, init) => {
        const headers = new Headers(init.headers);
        for (const k of credentialHeaders) headers.delete(k);
        for (const [k, v] of credentials) headers.append(k, v);
        return fetch(url, { ...init, headers, dispatcher });
      },
    });
    const params = JSON.parse(Buffer.from(it.body, 'base64').toString('utf8'));
    const out = { status: 200, sdk_events: 0, sdk_error: '' };
    try {
      const res = await op[1](client).create(params);
      if (params.stream) {
        for await (const _ of res) out.sdk_events++;
      } else {
        // output_text is the SDK's own convenience field, not the API's.
        if (op[0] === 'responses') delete res.output_text;
        out.body = Buffer.from(JSON.stringify(res)).toString('base64');
      }
    } catch (err) {
      if (err && typeof err.status === 'number') out.status = err.status;
      out.sdk_error = String(err && err.message ? err.message : err);
    }
    emit(out);
  }
  await dispatcher.close();
}

async function main() {
  const mode = process.argv[2];
  if (mode === 'warmup') {
    // Wait for stdin to close so the sensor can attach to this binary.
    process.stdin.resume();
    await new Promise((resolve) => process.stdin.on('end', resolve));
    return;
  }
  const spec = readStdin();
  switch (mode) {
    case 'fetch': return runFetch(spec);
    case 'http2': return runHTTP2(spec);
    case 'openai': return runOpenAI(spec);
    default: throw new Error(`unknown mode ${mode}`);
  }
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
