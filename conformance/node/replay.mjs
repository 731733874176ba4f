// replay.mjs re-issues recorded provider requests through the official
// Node.js SDKs (openai, @anthropic-ai/sdk), the way a Node application
// behind the sensor's capture proxy makes them: the proxy comes from the
// standard HTTPS_PROXY environment variable (undici's EnvHttpProxyAgent;
// Node's fetch does not read it on its own) and the sensor CA from
// NODE_EXTRA_CA_CERTS. The conformance suite (conformance/proxy_node.go)
// writes a job file and runs:
//
//   HTTPS_PROXY=http://127.0.0.1:PORT NODE_EXTRA_CA_CERTS=ca.pem node replay.mjs job.json
//
// Each call's request goes out with the recorded body bytes and credential
// headers (so the sensor sees the recorded request and the golden events
// apply); the SDK must parse what comes back: the recorded JSON, every event
// of a stream, or its API error carrying the recorded status. Any mismatch
// exits 1 with the reason on stderr.

import { readFile } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import { EnvHttpProxyAgent, fetch as undiciFetch } from 'undici';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

const credentialHeaders = ['authorization', 'x-api-key', 'api-key'];
const timeout = 120_000;

// recordedFetch sends through the proxy and swaps in the recorded body and
// credentials just before the request leaves, as the Go SDK drivers do.
function recordedFetch(dispatcher, call) {
  return (url, init = {}) => {
    const headers = new Headers(init.headers);
    for (const k of credentialHeaders) headers.delete(k);
    for (const [k, vs] of Object.entries(call.credentials ?? {})) {
      for (const v of vs) headers.append(k, v);
    }
    return undiciFetch(url, { ...init, headers, body: call.body, dispatcher });
  };
}

// contains reports whether got has every field of want with the same value
// (an SDK may add convenience fields such as output_text).
function contains(got, want) {
  if (Array.isArray(want)) {
    return Array.isArray(got) && got.length === want.length && want.every((w, i) => contains(got[i], w));
  }
  if (want !== null && typeof want === 'object') {
    return got !== null && typeof got === 'object' && Object.keys(want).every((k) => contains(got[k], want[k]));
  }
  return isDeepStrictEqual(got, want);
}

function client(sdk, call, dispatcher) {
  const common = {
    baseURL: call.base,
    apiKey: 'sk-oisp-conformance-placeholder',
    maxRetries: 0,
    timeout,
    fetch: recordedFetch(dispatcher, call),
  };
  if (sdk === 'anthropic') return new Anthropic(common);
  return new OpenAI(common);
}

function start(c, call, params, opts) {
  switch (call.op) {
    case 'chat':
      return c.chat.completions.create(params, opts);
    case 'completions':
      return c.completions.create(params, opts);
    case 'responses':
      return c.responses.create(params, opts);
    case 'embeddings':
      // The recorded request decides the encoding; the SDK's base64 default
      // would make it decode floats it never asked for.
      return c.embeddings.create({ ...params, encoding_format: params.encoding_format ?? 'float' }, opts);
    case 'messages':
      return c.messages.create(params, opts);
  }
  throw new Error(`unknown operation ${call.op}`);
}

async function perform(sdk, call, dispatcher) {
  const c = client(sdk, call, dispatcher);
  const params = JSON.parse(call.body);
  const opts = { headers: call.headers, query: call.query };
  const failed = call.status >= 300;
  let result;
  try {
    result = await start(c, call, params, opts);
  } catch (err) {
    if (failed && err?.status === call.status) return;
    if (failed) throw new Error(`SDK error ${err?.status ?? ''} ${err}, want its API error with status ${call.status}`);
    throw new Error(`SDK call failed: ${err}`);
  }
  if (failed) throw new Error(`SDK call succeeded, recorded status ${call.status}`);
  if (params.stream) {
    let n = 0;
    try {
      for await (const _ of result) n++;
    } catch (err) {
      // An in-band error event ends a recorded stream with the SDK's error.
      if (!call.response.includes('"error"')) throw new Error(`SDK stream failed after ${n} events: ${err}`);
      return;
    }
    if (n === 0) throw new Error('SDK stream yielded no events');
    return;
  }
  if (!contains(result, JSON.parse(call.response))) {
    throw new Error('the response the SDK parsed differs from the recorded one');
  }
}

async function main() {
  const job = JSON.parse(await readFile(process.argv[2], 'utf8'));
  if (!process.env.HTTPS_PROXY && !process.env.https_proxy) {
    throw new Error('HTTPS_PROXY is not set: this driver only runs through a proxy');
  }
  const dispatcher = new EnvHttpProxyAgent();
  try {
    for (const [i, call] of job.calls.entries()) {
      try {
        await perform(job.sdk, call, dispatcher);
      } catch (err) {
        throw new Error(`interaction ${i + 1} (${call.op} ${call.base}): ${err.message}`);
      }
    }
  } finally {
    await dispatcher.close();
  }
}

main().catch((err) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
