package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
)

// allEventTypes is the event-type table of OISP v0.1 (21 types).
var allEventTypes = []string{
	"agent.plan_step", "agent.rag_retrieve", "agent.session", "agent.tool_call", "agent.tool_result",
	"ai.embedding", "ai.request", "ai.response", "ai.streaming_chunk",
	"file.delete", "file.open", "file.read", "file.rename", "file.write",
	"network.accept", "network.connect", "network.dns", "network.flow",
	"process.exec", "process.exit", "process.fork",
}

// validationCase is one hand-written event and the exact problems the
// validator must report for it (none for a valid event).
type validationCase struct {
	name  string
	event string
	want  []string
}

func (c validationCase) valid() bool { return len(c.want) == 0 }

// baseEnvelope is a minimal valid envelope without event_type and data.
const baseEnvelope = `"oisp_version":"0.1","event_id":"01KB6ZQ8Z8X1Y2Z3A4B5C6D7E8",` +
	`"ts":"2025-12-22T20:15:05.123456Z",` +
	`"source":{"collector":"oisp-sensor","capture_method":"ebpf_uprobe"},` +
	`"confidence":{"level":"high","completeness":"full"}`

// withData builds an event of the given type around a data literal.
func withData(eventType, data string) string {
	return fmt.Sprintf(`{%s,"event_type":%q,"data":%s}`, baseEnvelope, eventType, data)
}

// patched returns a minimal valid ai.request event changed by edit.
func patched(edit func(ev map[string]any)) string {
	var ev map[string]any
	if err := json.Unmarshal([]byte(withData("ai.request", `{"provider":{"name":"openai"},"model":{"id":"gpt-4o"}}`)), &ev); err != nil {
		panic(err)
	}
	edit(ev)
	out, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return string(out)
}

// setPath sets a value at a slash-separated path of nested objects,
// creating objects on the way.
func setPath(ev map[string]any, p string, value any) {
	keys := strings.Split(p, "/")
	for _, k := range keys[:len(keys)-1] {
		next, ok := ev[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			ev[k] = next
		}
		ev = next
	}
	ev[keys[len(keys)-1]] = value
}

func set(p string, value any) func(map[string]any) {
	return func(ev map[string]any) { setPath(ev, p, value) }
}

func del(key string) func(map[string]any) {
	return func(ev map[string]any) { delete(ev, key) }
}

func valid(name, event string) validationCase { return validationCase{name: name, event: event} }

func invalid(name, event string, want ...string) validationCase {
	return validationCase{name: name, event: event, want: want}
}

var (
	providerEnum = `value must be one of 'openai', 'anthropic', 'google', 'azure_openai', 'aws_bedrock', ` +
		`'cohere', 'mistral', 'groq', 'together', 'fireworks', 'replicate', 'huggingface', 'ollama', ` +
		`'lmstudio', 'vllm', 'other'`
	finishEnum = `value must be one of 'stop', 'length', 'tool_calls', 'content_filter', 'error', 'other'`
	roleEnum   = `value must be one of 'system', 'user', 'assistant', 'tool', 'function'`
	redacted   = `{"$redacted":{"reason":"default_safe","hash":"sha256:ab12"}}`
	longText   = strings.Repeat("x", 257)

	rfc3339Hint = " (want RFC 3339 such as 2025-12-22T20:15:05.123456Z)"
)

// schemaCases covers the envelope, the common objects and every event type.
var schemaCases = []validationCase{
	// Smallest valid payload of every event type.
	valid("minimal ai.request", withData("ai.request", `{}`)),
	valid("minimal ai.response", withData("ai.response", `{}`)),
	valid("minimal ai.streaming_chunk", withData("ai.streaming_chunk", `{}`)),
	valid("minimal ai.embedding", withData("ai.embedding", `{}`)),
	valid("minimal agent.tool_call", withData("agent.tool_call", `{"tool":{"name":"read_file"}}`)),
	valid("minimal agent.tool_result", withData("agent.tool_result", `{"call_id":"call_1"}`)),
	valid("minimal agent.plan_step", withData("agent.plan_step", `{}`)),
	valid("minimal agent.rag_retrieve", withData("agent.rag_retrieve", `{}`)),
	valid("minimal agent.session", withData("agent.session", `{"action":"start"}`)),
	valid("minimal file.open", withData("file.open", `{"path":"/x","flags":["write"]}`)),
	valid("minimal file.read", withData("file.read", `{"path":"/x"}`)),
	valid("minimal file.write", withData("file.write", `{"path":"/x"}`)),
	valid("minimal file.delete", withData("file.delete", `{"path":"/x"}`)),
	valid("minimal file.rename", withData("file.rename", `{"old_path":"/a","new_path":"/b"}`)),
	valid("minimal network.connect", withData("network.connect", `{"dest":{"ip":"1.2.3.4","port":443}}`)),
	valid("minimal network.accept", withData("network.accept", `{"src":{}}`)),
	valid("minimal network.flow", withData("network.flow", `{"dest":{}}`)),
	valid("minimal network.dns", withData("network.dns", `{"query_name":"api.openai.com","query_type":"A"}`)),
	valid("minimal process.exec", withData("process.exec", `{"exe":"/usr/bin/python3"}`)),
	valid("minimal process.exit", withData("process.exit", `{"exit_code":0}`)),
	valid("minimal process.fork", withData("process.fork", `{"child_pid":123}`)),

	// Valid edge cases.
	valid("data may be absent when the branch requires nothing", patched(del("data"))),
	valid("extra fields inside data are allowed (open branches)",
		withData("ai.response", `{"thinking":{"content_length":10},"usage":{"cache_creation_input_tokens":5}}`)),
	valid("ts with numeric offset", patched(set("ts", "2025-12-22T20:15:05.123456+02:00"))),
	valid("ts with nanoseconds", patched(set("ts", "2025-12-22T20:15:05.123456789Z"))),
	valid("attrs and ext take anything", patched(func(ev map[string]any) {
		ev["attrs"] = map[string]any{"a": []any{1.0, "b", nil}, "n": nil}
		ev["ext"] = map[string]any{"oximy.x": map[string]any{"y": true}}
	})),
	valid("common objects are open", patched(func(ev map[string]any) {
		setPath(ev, "host/vendor_field", 1.0)
		setPath(ev, "actor/vendor_field", "x")
		setPath(ev, "process/tid", 7.0)
		setPath(ev, "app/vendor_field", false)
		setPath(ev, "web_context/vendor_field", "x")
		setPath(ev, "confidence/vendor_field", "x")
	})),
	valid("redacted message content", withData("ai.request", `{"messages":[{"role":"user","content":`+redacted+`}]}`)),
	valid("tool arguments as JSON string", withData("ai.response", `{"tool_calls":[{"name":"f","arguments":"{\"a\":1}"}]}`)),
	valid("tool result as array", withData("agent.tool_result", `{"call_id":"c","result":[1,2]}`)),
	valid("tool result as string", withData("agent.tool_result", `{"call_id":"c","result":"ok"}`)),
	valid("integral float for an integer field", withData("ai.response", `{"latency_ms":12.0}`)),
	valid("number field takes integers", withData("network.connect", `{"dest":{},"latency_ms":12}`)),
	valid("flags may be empty", withData("file.open", `{"path":"/x","flags":[]}`)),
	valid("port bounds", withData("network.connect", `{"dest":{"port":65535},"src":{"port":0}}`)),
	valid("sample_rate bounds", patched(set("confidence/sample_rate", 1.0))),
	valid("trace_flags bound", patched(set("trace_context/trace_flags", 255.0))),
	valid("empty trace_context", patched(set("trace_context", map[string]any{}))),
	valid("oisp_version with larger numbers", patched(set("oisp_version", "10.20"))),
	valid("related event with extra field", patched(set("related_events", []any{
		map[string]any{"event_id": "x", "relationship": "parent", "note": "open object"}}))),

	// Envelope: required fields.
	invalid("envelope missing oisp_version", patched(del("oisp_version")), "(root): missing property 'oisp_version'"),
	invalid("envelope missing event_id", patched(del("event_id")), "(root): missing property 'event_id'"),
	invalid("envelope missing event_type", patched(del("event_type")), "(root): missing property 'event_type'"),
	invalid("envelope missing ts", patched(del("ts")), "(root): missing property 'ts'"),
	invalid("envelope missing source", patched(del("source")), "(root): missing property 'source'"),
	invalid("envelope missing confidence", patched(del("confidence")), "(root): missing property 'confidence'"),
	invalid("envelope missing two fields", patched(func(ev map[string]any) { delete(ev, "ts"); delete(ev, "source") }),
		"(root): missing properties 'ts', 'source'"),
	invalid("event is not an object", `[]`, "(root): got array, want object"),

	// Envelope: closed object and field constraints.
	invalid("extra envelope field (README trace)", patched(set("trace", map[string]any{"id": "x"})),
		"(root): additional properties 'trace' not allowed"),
	invalid("oisp_version with patch number", patched(set("oisp_version", "0.1.0")),
		"oisp_version: '0.1.0' does not match pattern '^[0-9]+\\\\.[0-9]+$'"),
	invalid("oisp_version as number", patched(set("oisp_version", 0.1)), "oisp_version: got number, want string"),
	invalid("empty event_id", patched(set("event_id", "")), "event_id: minLength: got 0, want 1"),
	invalid("event_type with capital letters", patched(set("event_type", "AI.request")),
		"event_type: 'AI.request' does not match pattern '^[a-z][a-z0-9]*(?:\\\\.[a-z][a-z0-9_]*)*$'"),
	invalid("unknown event_type file.close", withData("file.close", `{"path":"/x"}`),
		`event_type: event type "file.close" is not defined by OISP v0.1`),
	invalid("unknown event_type capture.raw", withData("capture.raw", `{}`),
		`event_type: event type "capture.raw" is not defined by OISP v0.1`),
	invalid("helper $defs are not event types", withData("ai.provider_info", `{}`),
		`event_type: event type "ai.provider_info" is not defined by OISP v0.1`),
	invalid("category alone is not an event type", withData("ai", `{}`),
		`event_type: event type "ai" is not defined by OISP v0.1`),
	invalid("README rag.retrieve is not an event type", withData("rag.retrieve", `{}`),
		`event_type: event type "rag.retrieve" is not defined by OISP v0.1`),
	invalid("ts without time zone", patched(set("ts", "2025-12-22T14:30:15.123456")),
		"ts: '2025-12-22T14:30:15.123456' is not valid date-time: invalid time element: offset must be 6 characters long"+rfc3339Hint),
	invalid("ts date only", patched(set("ts", "2025-12-22")),
		"ts: '2025-12-22' is not valid date-time: less than 20 characters long"+rfc3339Hint),
	invalid("ts as epoch number", patched(set("ts", 1766434515.0)), "ts: got number, want string"),
	invalid("negative ts_mono", patched(set("ts_mono", -1.0)), "ts_mono: minimum: got -1, want 0"),
	invalid("source without collector", patched(set("source", map[string]any{"capture_method": "ebpf_uprobe"})),
		"source: missing property 'collector'"),
	invalid("source capture_method not in enum", patched(set("source/capture_method", "uprobe")),
		`source/capture_method: value must be one of 'ebpf_tracepoint', 'ebpf_kprobe', 'ebpf_uprobe', 'dtrace', 'etw', `+
			`'syscall_intercept', 'tls_boundary', 'mitm_proxy', 'browser_extension', 'sdk_instrumentation', 'vendor_api', `+
			`'vendor_audit_log', 'log_parsing', 'endpoint_security', 'network_extension', 'other'`),
	invalid("confidence level unknown", patched(set("confidence/level", "unknown")),
		`confidence/level: value must be one of 'high', 'medium', 'low', 'inferred'`),
	invalid("confidence without completeness", patched(set("confidence", map[string]any{"level": "low"})),
		"confidence: missing property 'completeness'"),
	invalid("confidence sample_rate above 1", patched(set("confidence/sample_rate", 1.5)),
		"confidence/sample_rate: maximum: got 1.5, want 1"),
	invalid("data is null", patched(set("data", nil)), "data: got null, want object"),
	invalid("data is an array", patched(set("data", []any{})), "data: got array, want object"),
	invalid("data absent for a type with required fields", func() string {
		var ev map[string]any
		_ = json.Unmarshal([]byte(withData("process.exit", `{}`)), &ev)
		delete(ev, "data")
		out, _ := json.Marshal(ev)
		return string(out)
	}(), "data: absent, but process.exit requires it: missing property 'exit_code'"),
	invalid("related event relationship not in enum", patched(set("related_events", []any{
		map[string]any{"event_id": "x", "relationship": "sibling"}})),
		`related_events/0/relationship: value must be one of 'parent', 'child', 'caused_by', 'causes', 'related'`),
	invalid("related event without event_id", patched(set("related_events", []any{
		map[string]any{"relationship": "parent"}})),
		"related_events/0: missing property 'event_id'"),
	invalid("trace_id in upper case", patched(set("trace_context/trace_id", "4BF92F3577B34DA6A3CE929D0E0E4736")),
		"trace_context/trace_id: '4BF92F3577B34DA6A3CE929D0E0E4736' does not match pattern '^[a-f0-9]{32}$'"),
	invalid("span_id too short", patched(set("trace_context/span_id", "00f067aa")),
		"trace_context/span_id: '00f067aa' does not match pattern '^[a-f0-9]{16}$'"),
	invalid("trace_flags above a byte", patched(set("trace_context/trace_flags", 256.0)),
		"trace_context/trace_flags: maximum: got 256, want 255"),

	// Common objects.
	invalid("host os macos", patched(set("host/os", "macos")),
		`host/os: value must be one of 'linux', 'darwin', 'windows', 'freebsd', 'other'`),
	invalid("host arch amd64", patched(set("host/arch", "amd64")),
		`host/arch: value must be one of 'x86_64', 'aarch64', 'arm', 'i686', 'other'`),
	invalid("null hostname", patched(set("host/hostname", nil)), "host/hostname: got null, want string"),
	invalid("k8s label value not a string", patched(set("host/k8s/labels", map[string]any{"tier": 1.0})),
		"host/k8s/labels/tier: got number, want string"),
	invalid("container runtime not in enum", patched(set("host/container/runtime", "lxc")),
		`host/container/runtime: value must be one of 'docker', 'containerd', 'crio', 'podman', 'other'`),
	invalid("actor uid negative", patched(set("actor/uid", -1.0)), "actor/uid: minimum: got -1, want 0"),
	invalid("actor identity email malformed", patched(set("actor/identity/email", "alice.example.org")),
		"actor/identity/email: 'alice.example.org' is not valid email: missing @"),
	invalid("actor auth_method not in enum", patched(set("actor/auth_method", "passkey")),
		`actor/auth_method: value must be one of 'password', 'sso', 'mfa', 'ssh_key', 'certificate', 'token', 'api_key', 'none', 'unknown'`),
	invalid("process hash as bare string", patched(set("process/hash", "9f86d081")),
		"process/hash: got string, want object"),
	invalid("process hash sha256 in upper case", patched(set("process/hash/sha256", strings.Repeat("AB", 32))),
		"process/hash/sha256: '"+strings.Repeat("AB", 32)+"' does not match pattern '^[a-f0-9]{64}$'"),
	invalid("process start_time malformed", patched(set("process/start_time", "yesterday")),
		"process/start_time: 'yesterday' is not valid date-time: less than 20 characters long"+rfc3339Hint),
	invalid("process pid as string", patched(set("process/pid", "42")), "process/pid: got string, want integer"),
	invalid("process env value not a string", patched(set("process/env", map[string]any{"N": 1.0})),
		"process/env/N: got number, want string"),
	invalid("app tier not in enum", patched(set("app/tier", "gold")),
		`app/tier: value must be one of 'unknown', 'identified', 'profiled'`),
	invalid("app category not in enum", patched(set("app/category", "ai-code-editor")),
		`app/category: value must be one of 'dev_tools', 'chat', 'productivity', 'creative', 'browser', 'cli', 'server', 'other'`),
	invalid("web origin null", patched(set("web_context/origin", "null")),
		"web_context/origin: 'null' is not valid uri: relative url"),
	invalid("web origin without scheme", patched(set("web_context/origin", "chatgpt.com")),
		"web_context/origin: 'chatgpt.com' is not valid uri: relative url"),
	invalid("web_app_type not in enum", patched(set("web_context/web_app_type", "proxied")),
		`web_context/web_app_type: value must be one of 'direct', 'embedded'`),

	// ai.request
	invalid("ai.request provider as string (README shape)", withData("ai.request", `{"provider":"openai","model":"gpt-4o"}`),
		"data/model: got string, want object", "data/provider: got string, want object"),
	invalid("ai.request provider name not in enum", withData("ai.request", `{"provider":{"name":"google_vertex"}}`),
		"data/provider/name: "+providerEnum),
	invalid("ai.request model null", withData("ai.request", `{"model":null}`), "data/model: got null, want object"),
	invalid("ai.request request_type utility", withData("ai.request", `{"request_type":"utility"}`),
		`data/request_type: value must be one of 'chat', 'completion', 'embedding', 'image', 'audio', 'moderation', 'other'`),
	invalid("ai.request tool_choice as object", withData("ai.request", `{"tool_choice":{"type":"function"}}`),
		"data/tool_choice: got object, want string"),
	invalid("ai.request stop as single string", withData("ai.request", `{"parameters":{"stop":"END"}}`),
		"data/parameters/stop: got string, want array"),
	invalid("ai.request max_tokens fractional", withData("ai.request", `{"parameters":{"max_tokens":10.5}}`),
		"data/parameters/max_tokens: got number, want integer"),
	invalid("ai.request message without role", withData("ai.request", `{"messages":[{"content":"hi"}]}`),
		"data/messages/0: missing property 'role'"),
	invalid("ai.request role developer", withData("ai.request", `{"messages":[{"role":"developer"}]}`),
		"data/messages/0/role: "+roleEnum),
	invalid("ai.request content as parts array", withData("ai.request", `{"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`),
		"data/messages/0/content: matches none of the allowed forms: got array, want string | got array, want object"),
	invalid("ai.request redaction marker without reason", withData("ai.request", `{"messages":[{"role":"user","content":{"$redacted":{}}}]}`),
		"data/messages/0/content: matches none of the allowed forms: got object, want string | $redacted: missing property 'reason'"),
	invalid("ai.request redaction preview too long", withData("ai.request",
		`{"messages":[{"role":"user","content":{"$redacted":{"reason":"pii","preview":"`+strings.Repeat("p", 101)+`"}}}]}`),
		"data/messages/0/content: matches none of the allowed forms: got object, want string | $redacted/preview: maxLength: got 101, want 100"),
	invalid("ai.request key_prefix longer than 8", withData("ai.request", `{"auth":{"key_prefix":"sk-proj-a"}}`),
		"data/auth/key_prefix: maxLength: got 9, want 8"),
	invalid("ai.request tool definition type not in enum", withData("ai.request", `{"tools":[{"name":"bash","type":"bash_20250124"}]}`),
		`data/tools/0/type: value must be one of 'function', 'code_interpreter', 'file_search', 'computer_use', 'other'`),
	invalid("ai.request streaming as string", withData("ai.request", `{"streaming":"true"}`),
		"data/streaming: got string, want boolean"),

	// ai.response
	invalid("ai.response token count as string", withData("ai.response", `{"usage":{"prompt_tokens":"12"}}`),
		"data/usage/prompt_tokens: got string, want integer"),
	invalid("ai.response latency fractional", withData("ai.response", `{"latency_ms":12.5}`),
		"data/latency_ms: got number, want integer"),
	invalid("ai.response raw Anthropic finish_reason", withData("ai.response", `{"finish_reason":"end_turn"}`),
		"data/finish_reason: "+finishEnum),
	invalid("ai.response raw Gemini choice finish_reason", withData("ai.response", `{"choices":[{"index":0,"finish_reason":"STOP"}]}`),
		"data/choices/0/finish_reason: "+finishEnum),
	invalid("ai.response redacted tool arguments match two alternatives", withData("ai.response", `{"tool_calls":[{"arguments":`+redacted+`}]}`),
		"data/tool_calls/0/arguments: matches more than one allowed form (oneOf alternatives 1 and 2, from 0) but must match exactly one"),
	invalid("ai.response error code as number", withData("ai.response", `{"error":{"code":429}}`),
		"data/error/code: got number, want string"),
	invalid("ai.response cost as string", withData("ai.response", `{"usage":{"total_cost_usd":"0.01"}}`),
		"data/usage/total_cost_usd: got string, want number"),

	// ai.streaming_chunk
	invalid("ai.streaming_chunk chunk_index as string", withData("ai.streaming_chunk", `{"chunk_index":"3"}`),
		"data/chunk_index: got string, want integer"),
	invalid("ai.streaming_chunk null delta content", withData("ai.streaming_chunk", `{"delta":{"content":null}}`),
		"data/delta/content: got null, want string"),

	// ai.embedding
	invalid("ai.embedding dimensions fractional", withData("ai.embedding", `{"dimensions":1536.5}`),
		"data/dimensions: got number, want integer"),
	invalid("ai.embedding provider name capitalised", withData("ai.embedding", `{"provider":{"name":"OpenAI"}}`),
		"data/provider/name: "+providerEnum),

	// agent.tool_call
	invalid("agent.tool_call missing tool (README tool_name)", withData("agent.tool_call", `{"tool_name":"bash","tool_call_id":"c1"}`),
		"data: missing property 'tool'"),
	invalid("agent.tool_call arguments as JSON string", withData("agent.tool_call", `{"tool":{},"arguments":"{\"a\":1}"}`),
		"data/arguments: got string, want object"),
	invalid("agent.tool_call risk_level not in enum", withData("agent.tool_call", `{"tool":{},"risk_level":"severe"}`),
		`data/risk_level: value must be one of 'low', 'medium', 'high', 'critical'`),
	invalid("agent.tool_call tool type not in enum", withData("agent.tool_call", `{"tool":{"type":"mcp"}}`),
		`data/tool/type: value must be one of 'file_read', 'file_write', 'file_edit', 'terminal', 'shell', 'browser', 'http', `+
			`'database', 'code_execution', 'search', 'retrieval', 'api_call', 'computer_use', 'other'`),
	invalid("agent.tool_call triggered_by not in enum", withData("agent.tool_call", `{"tool":{},"triggered_by":"user"}`),
		`data/triggered_by: value must be one of 'llm_decision', 'user_approval', 'automatic', 'workflow', 'retry'`),

	// agent.tool_result
	invalid("agent.tool_result missing call_id", withData("agent.tool_result", `{"success":true}`),
		"data: missing property 'call_id'"),
	invalid("agent.tool_result redacted result matches two alternatives", withData("agent.tool_result", `{"call_id":"c","result":`+redacted+`}`),
		"data/result: matches more than one allowed form (oneOf alternatives 1 and 3, from 0) but must match exactly one"),
	invalid("agent.tool_result number result", withData("agent.tool_result", `{"call_id":"c","result":42}`),
		"data/result: matches none of the allowed forms: got number, want string | got number, want object | "+
			"got number, want array | got number, want object"),
	invalid("agent.tool_result side effect type not in enum", withData("agent.tool_result", `{"call_id":"c","side_effects":[{"type":"file_written"}]}`),
		`data/side_effects/0/type: value must be one of 'file_created', 'file_modified', 'file_deleted', 'process_spawned', `+
			`'network_request', 'database_write', 'other'`),
	invalid("agent.tool_result agent type not in enum", withData("agent.tool_result", `{"call_id":"c","agent":{"type":"bot"}}`),
		`data/agent/type: value must be one of 'ide', 'cli', 'browser', 'server', 'autonomous', 'workflow', 'other'`),

	// agent.plan_step
	invalid("agent.plan_step step_type not in enum", withData("agent.plan_step", `{"step_type":"thinking"}`),
		`data/step_type: value must be one of 'planning', 'reasoning', 'decision', 'reflection', 'revision'`),
	invalid("agent.plan_step context file not a string", withData("agent.plan_step", `{"context_files":["a.go",7]}`),
		"data/context_files/1: got number, want string"),

	// agent.rag_retrieve
	invalid("agent.rag_retrieve score as string", withData("agent.rag_retrieve", `{"results":[{"score":"0.9"}]}`),
		"data/results/0/score: got string, want number"),
	invalid("agent.rag_retrieve source type not in enum", withData("agent.rag_retrieve", `{"source":{"type":"pinecone"}}`),
		`data/source/type: value must be one of 'vector_db', 'knowledge_base', 'file_search', 'web_search', 'database', 'api', 'other'`),

	// agent.session
	invalid("agent.session missing action", withData("agent.session", `{"session_id":"s"}`),
		"data: missing property 'action'"),
	invalid("agent.session action not in enum", withData("agent.session", `{"action":"stop"}`),
		`data/action: value must be one of 'start', 'end', 'pause', 'resume', 'error'`),
	invalid("agent.session tokens_used fractional", withData("agent.session", `{"action":"end","stats":{"tokens_used":1.5}}`),
		"data/stats/tokens_used: got number, want integer"),

	// file.*
	invalid("file.open missing flags", withData("file.open", `{"path":"/x"}`), "data: missing property 'flags'"),
	invalid("file.open flags as O_* bitmask", withData("file.open", `{"path":"/x","flags":577}`),
		"data/flags: got number, want array"),
	invalid("file.open flag not in enum", withData("file.open", `{"path":"/x","flags":["rw"]}`),
		`data/flags/0: value must be one of 'read', 'write', 'append', 'create', 'truncate', 'exclusive'`),
	invalid("file.read missing path", withData("file.read", `{"bytes_read":1}`), "data: missing property 'path'"),
	invalid("file.read negative bytes_read", withData("file.read", `{"path":"/x","bytes_read":-1}`),
		"data/bytes_read: minimum: got -1, want 0"),
	invalid("file.read preview longer than 256", withData("file.read", `{"path":"/x","content_preview":"`+longText+`"}`),
		"data/content_preview: maxLength: got 257, want 256"),
	invalid("file.write negative bytes_written", withData("file.write", `{"path":"/x","bytes_written":-4}`),
		"data/bytes_written: minimum: got -4, want 0"),
	invalid("file.write mtime malformed", withData("file.write", `{"path":"/x","file":{"mtime":"2026-01-14 09:12:40"}}`),
		"data/file/mtime: '2026-01-14 09:12:40' is not valid date-time: less than 20 characters long"+rfc3339Hint),
	invalid("file.write size negative", withData("file.write", `{"path":"/x","file":{"size":-1}}`),
		"data/file/size: minimum: got -1, want 0"),
	invalid("file.delete null path", withData("file.delete", `{"path":null}`), "data/path: got null, want string"),
	invalid("file.delete recursive as string", withData("file.delete", `{"path":"/x","recursive":"yes"}`),
		"data/recursive: got string, want boolean"),
	invalid("file.rename missing new_path", withData("file.rename", `{"old_path":"/a"}`),
		"data: missing property 'new_path'"),

	// network.*
	invalid("network.connect missing dest", withData("network.connect", `{"src":{}}`), "data: missing property 'dest'"),
	invalid("network.connect port above 65535", withData("network.connect", `{"dest":{"port":70000}}`),
		"data/dest/port: maximum: got 70000, want 65535"),
	invalid("network.connect latency as string", withData("network.connect", `{"dest":{},"latency_ms":"12"}`),
		"data/latency_ms: got string, want number"),
	invalid("network.connect certificate not_after malformed", withData("network.connect",
		`{"dest":{},"tls":{"certificate":{"not_after":"Jan 30 2026"}}}`),
		"data/tls/certificate/not_after: 'Jan 30 2026' is not valid date-time: less than 20 characters long"+rfc3339Hint),
	invalid("network.connect geo asn as string", withData("network.connect", `{"dest":{"geo":{"asn":"AS13335"}}}`),
		"data/dest/geo/asn: got string, want integer"),
	invalid("network.accept missing src", withData("network.accept", `{"dest":{}}`), "data: missing property 'src'"),
	invalid("network.accept protocol not in enum", withData("network.accept", `{"src":{},"protocol":"http"}`),
		`data/protocol: value must be one of 'tcp', 'udp', 'unix', 'other'`),
	invalid("network.flow direction not in enum", withData("network.flow", `{"dest":{},"direction":"out"}`),
		`data/direction: value must be one of 'outbound', 'inbound', 'bidirectional'`),
	invalid("network.flow negative bytes_sent", withData("network.flow", `{"dest":{},"bytes_sent":-1}`),
		"data/bytes_sent: minimum: got -1, want 0"),
	invalid("network.flow header value not a string", withData("network.flow", `{"dest":{},"http":{"request_headers":{"x-n":1}}}`),
		"data/http/request_headers/x-n: got number, want string"),
	invalid("network.flow start_time malformed", withData("network.flow", `{"dest":{},"start_time":"now"}`),
		"data/start_time: 'now' is not valid date-time: less than 20 characters long"+rfc3339Hint),
	invalid("network.dns query_type lower case", withData("network.dns", `{"query_name":"x","query_type":"a"}`),
		`data/query_type: value must be one of 'A', 'AAAA', 'CNAME', 'MX', 'TXT', 'NS', 'PTR', 'SRV', 'other'`),
	invalid("network.dns missing query_type", withData("network.dns", `{"query_name":"x"}`),
		"data: missing property 'query_type'"),
	invalid("network.dns response_code not in enum", withData("network.dns", `{"query_name":"x","query_type":"A","response_code":"NOTIMP"}`),
		`data/response_code: value must be one of 'NOERROR', 'NXDOMAIN', 'SERVFAIL', 'REFUSED', 'other'`),

	// process.*
	invalid("process.exec missing exe", withData("process.exec", `{"args":["ls"]}`), "data: missing property 'exe'"),
	invalid("process.exec binary_hash as bare string", withData("process.exec", `{"exe":"/bin/ls","binary_hash":"abc"}`),
		"data/binary_hash: got string, want object"),
	invalid("process.exec binary_hash md5 wrong length", withData("process.exec", `{"exe":"/bin/ls","binary_hash":{"md5":"abc"}}`),
		"data/binary_hash/md5: 'abc' does not match pattern '^[a-f0-9]{32}$'"),
	invalid("process.exec code_signature signed as string", withData("process.exec", `{"exe":"/bin/ls","code_signature":{"signed":"yes"}}`),
		"data/code_signature/signed: got string, want boolean"),
	invalid("process.exec env value not a string", withData("process.exec", `{"exe":"/bin/ls","env":{"N":1}}`),
		"data/env/N: got number, want string"),
	invalid("process.exit missing exit_code", withData("process.exit", `{"signal":9}`), "data: missing property 'exit_code'"),
	invalid("process.exit exit_code as string", withData("process.exit", `{"exit_code":"0"}`),
		"data/exit_code: got string, want integer"),
	invalid("process.exit negative runtime", withData("process.exit", `{"exit_code":0,"runtime_ms":-5}`),
		"data/runtime_ms: minimum: got -5, want 0"),
	invalid("process.exit termination_type not in enum", withData("process.exit", `{"exit_code":0,"termination_type":"killed"}`),
		`data/termination_type: value must be one of 'normal', 'signaled', 'coredump', 'unknown'`),
	invalid("process.fork missing child_pid", withData("process.fork", `{"is_thread":true}`), "data: missing property 'child_pid'"),
	invalid("process.fork negative child_pid", withData("process.fork", `{"child_pid":-2}`),
		"data/child_pid: minimum: got -2, want 0"),

	// Several problems at once are all reported, sorted by location.
	invalid("problems in envelope and data together", func() string {
		return `{"oisp_version":"0.1.0","event_id":"e","event_type":"ai.response","ts":"2025-12-22T20:15:05Z",` +
			`"source":{"collector":"c"},"confidence":{"level":"high","completeness":"full"},` +
			`"extra":1,"data":{"latency_ms":"5","usage":{"prompt_tokens":1.5}}}`
	}(),
		"(root): additional properties 'extra' not allowed",
		"data/latency_ms: got string, want integer",
		"data/usage/prompt_tokens: got number, want integer",
		"oisp_version: '0.1.0' does not match pattern '^[0-9]+\\\\.[0-9]+$'"),
}

func newTestValidator(t testing.TB) *Validator {
	t.Helper()
	v, err := NewValidator()
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}
	return v
}

// problemLines returns the problem lines of a validation error, or fails
// the test when err is some other kind of error.
func problemLines(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("got a non-validation error: %v", err)
	}
	if len(verr.Problems) == 0 {
		t.Fatalf("ValidationError without problems")
	}
	lines := strings.Split(verr.Error(), "\n")
	if len(lines) != len(verr.Problems) {
		t.Fatalf("Error() has %d lines for %d problems:\n%s", len(lines), len(verr.Problems), verr.Error())
	}
	return lines
}

func TestSchemaCases(t *testing.T) {
	v := newTestValidator(t)
	seen := map[string]bool{}
	for _, tc := range schemaCases {
		if seen[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			got := problemLines(t, v.Validate([]byte(tc.event)))
			if !slices.Equal(got, tc.want) {
				t.Errorf("event %s\ngot problems:\n  %s\nwant:\n  %s", tc.event,
					strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

// TestSchemaCasesCoverEveryEventType makes sure each event type has at
// least one valid and one invalid hand-written case.
func TestSchemaCasesCoverEveryEventType(t *testing.T) {
	validFor, invalidFor := map[string]int{}, map[string]int{}
	for _, tc := range schemaCases {
		var ev struct {
			EventType string `json:"event_type"`
		}
		if err := json.Unmarshal([]byte(tc.event), &ev); err != nil {
			continue
		}
		if tc.valid() {
			validFor[ev.EventType]++
		} else if strings.Contains(strings.Join(tc.want, "\n"), "data") {
			invalidFor[ev.EventType]++
		}
	}
	for _, et := range allEventTypes {
		if validFor[et] == 0 || invalidFor[et] == 0 {
			t.Errorf("%s: %d valid and %d invalid data cases, want at least one of each", et, validFor[et], invalidFor[et])
		}
	}
}

func TestSchemaEventTypes(t *testing.T) {
	v := newTestValidator(t)
	if got := v.EventTypes(); !slices.Equal(got, allEventTypes) {
		t.Errorf("EventTypes() = %v\nwant %v", got, allEventTypes)
	}
	got := v.EventTypes()
	got[0] = "mutated"
	if v.EventTypes()[0] == "mutated" {
		t.Error("EventTypes returned the validator's own slice")
	}
}

// TestSchemaValidTestdata validates the rich, fully populated example event
// of every type in testdata/schema/valid.
func TestSchemaValidTestdata(t *testing.T) {
	v := newTestValidator(t)
	files, err := filepath.Glob(filepath.Join("testdata", "schema", "valid", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var covered []string
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		covered = append(covered, name)
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var ev struct {
				EventType string `json:"event_type"`
			}
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.EventType != name {
				t.Errorf("file %s holds event_type %q", file, ev.EventType)
			}
			if err := v.Validate(raw); err != nil {
				t.Errorf("valid event rejected:\n%v", err)
			}
		})
	}
	slices.Sort(covered)
	if !slices.Equal(covered, allEventTypes) {
		t.Errorf("testdata/schema/valid covers %v\nwant one file per event type %v", covered, allEventTypes)
	}
}

func TestSchemaValidateRejectsNonJSON(t *testing.T) {
	v := newTestValidator(t)
	for _, input := range []string{``, `{`, `{"a":1} {"b":2}`, `{"a":1}x`, "\xff"} {
		err := v.Validate([]byte(input))
		var verr *ValidationError
		if err == nil || errors.As(err, &verr) || !strings.Contains(err.Error(), "not valid JSON") {
			t.Errorf("Validate(%q) = %v, want a JSON syntax error", input, err)
		}
	}
}

func TestSchemaValidationErrorFields(t *testing.T) {
	v := newTestValidator(t)
	err := v.Validate([]byte(withData("ai.response", `{"usage":{"prompt_tokens":"12"}}`)))
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("got %v, want *ValidationError", err)
	}
	want := ValidationError{EventType: "ai.response", Problems: []Problem{
		{Location: "data/usage/prompt_tokens", Message: "got string, want integer"},
	}}
	if verr.EventType != want.EventType || !slices.Equal(verr.Problems, want.Problems) {
		t.Errorf("got %+v, want %+v", *verr, want)
	}
	if err := v.Validate([]byte(`{"event_type":7}`)); err == nil {
		t.Fatal("accepted an event with a numeric event_type")
	} else if errors.As(err, &verr) && verr.EventType != "" {
		t.Errorf("EventType = %q for a numeric event_type", verr.EventType)
	}
}

func TestSchemaPointerEscaping(t *testing.T) {
	v := newTestValidator(t)
	err := v.Validate([]byte(withData("process.exec", `{"exe":"/x","env":{"a/b~c":1}}`)))
	want := []string{"data/env/a~1b~0c: got number, want string"}
	if got := problemLines(t, err); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSchemaValidateValue(t *testing.T) {
	v := newTestValidator(t)
	type source struct {
		Collector string `json:"collector"`
	}
	type confidence struct {
		Level        string `json:"level"`
		Completeness string `json:"completeness"`
	}
	type event struct {
		Version    string         `json:"oisp_version"`
		ID         string         `json:"event_id"`
		Type       string         `json:"event_type"`
		TS         string         `json:"ts"`
		Source     source         `json:"source"`
		Confidence confidence     `json:"confidence"`
		Data       map[string]any `json:"data"`
	}
	ev := event{"0.1", "id", "process.exit", "2025-12-22T20:15:05.123456Z", source{"oisp-sensor"},
		confidence{"high", "full"}, map[string]any{"exit_code": 3}}
	if err := v.ValidateValue(ev); err != nil {
		t.Errorf("struct event rejected: %v", err)
	}
	ev.Data = map[string]any{"exit_code": "3"}
	want := []string{"data/exit_code: got string, want integer"}
	if got := problemLines(t, v.ValidateValue(&ev)); !slices.Equal(got, want) {
		t.Errorf("struct event: got %q, want %q", got, want)
	}

	var decoded map[string]any
	if err := json.Unmarshal([]byte(withData("process.exit", `{"exit_code":3}`)), &decoded); err != nil {
		t.Fatal(err)
	}
	if err := v.ValidateValue(decoded); err != nil {
		t.Errorf("decoded map rejected: %v", err)
	}
	decoded["data"].(map[string]any)["exit_code"] = 3.5
	want = []string{"data/exit_code: got number, want integer"}
	if got := problemLines(t, v.ValidateValue(decoded)); !slices.Equal(got, want) {
		t.Errorf("decoded map: got %q, want %q", got, want)
	}
	raw := []byte(withData("process.exit", `{"exit_code":"3"}`))
	want = []string{"data/exit_code: got string, want integer"}
	for _, in := range []any{raw, json.RawMessage(raw)} {
		if got := problemLines(t, v.ValidateValue(in)); !slices.Equal(got, want) {
			t.Errorf("ValidateValue(%T): got %q, want %q", in, got, want)
		}
	}
	if err := v.ValidateValue(make(chan int)); err == nil || !strings.Contains(err.Error(), "encode event") {
		t.Errorf("ValidateValue(chan) = %v, want an encoding error", err)
	}
}

// TestSchemaDeterministicMessages guards against map-order dependent output.
func TestSchemaDeterministicMessages(t *testing.T) {
	v := newTestValidator(t)
	event := []byte(withData("ai.response", `{"latency_ms":"1","was_cached":1,"success":"no","status_code":"200",`+
		`"usage":{"prompt_tokens":"1","completion_tokens":"2"},"choices":[{"index":"0","finish_reason":"x"}]}`))
	first := v.Validate(event).Error()
	for range 20 {
		if again := v.Validate(event).Error(); again != first {
			t.Fatalf("messages differ between runs:\n%s\n---\n%s", first, again)
		}
	}
}

// TestSchemaConcurrentValidate runs every case from several goroutines on
// one Validator; run with -race to check that validation shares no state.
func TestSchemaConcurrentValidate(t *testing.T) {
	v := newTestValidator(t)
	want := make([]string, len(schemaCases))
	for i, tc := range schemaCases {
		if err := v.Validate([]byte(tc.event)); err != nil {
			want[i] = err.Error()
		}
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8*len(schemaCases))
	for range 8 {
		wg.Go(func() {
			for i, tc := range schemaCases {
				got := ""
				if err := v.Validate([]byte(tc.event)); err != nil {
					got = err.Error()
				}
				if got != want[i] {
					errs <- fmt.Sprintf("%s: concurrent result %q differs from %q", tc.name, got, want[i])
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// testSchemaTree returns a small but complete schema tree in memory.
func testSchemaTree() fstest.MapFS {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	return fstest.MapFS{
		"envelope.schema.json": file(`{"$id":"https://oisp.dev/schema/v0.1/envelope.schema.json",
			"type":"object","required":["event_type"]}`),
		"events/demo.schema.json": file(`{"$id":"https://oisp.dev/schema/v0.1/events/demo.schema.json",
			"oneOf":[{"$ref":"#/$defs/thing"}],
			"$defs":{"thing":{"type":"object","required":["n"],"properties":{"n":{"type":"integer"}}},
			"helper":{"type":"string"}}}`),
	}
}

func TestSchemaNewValidatorFS(t *testing.T) {
	v, err := NewValidatorFS(testSchemaTree(), ".")
	if err != nil {
		t.Fatalf("NewValidatorFS: %v", err)
	}
	if got, want := v.EventTypes(), []string{"demo.thing"}; !slices.Equal(got, want) {
		t.Errorf("EventTypes() = %v, want %v", got, want)
	}
	if err := v.Validate([]byte(`{"event_type":"demo.thing","data":{"n":1}}`)); err != nil {
		t.Errorf("valid demo event rejected: %v", err)
	}
	if err := v.Validate([]byte(`{"event_type":"demo.helper","data":{}}`)); err == nil {
		t.Error("helper $defs entry accepted as an event type")
	}
}

func TestSchemaNewValidatorFSErrors(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name string
		edit func(fstest.MapFS)
		want string
	}{
		{"no envelope", func(m fstest.MapFS) { delete(m, "envelope.schema.json") }, "no envelope.schema.json"},
		{"no event files", func(m fstest.MapFS) { delete(m, "events/demo.schema.json") }, "defines no event types"},
		{"broken JSON", func(m fstest.MapFS) { m["common/x.schema.json"] = file(`{`) }, "parse schema common/x.schema.json"},
		{"wrong $id", func(m fstest.MapFS) {
			m["common/x.schema.json"] = file(`{"$id":"https://example.com/x.json"}`)
		}, `schema common/x.schema.json declares $id https://example.com/x.json, want "https://oisp.dev/schema/v0.1/common/x.schema.json"`},
		{"missing $id", func(m fstest.MapFS) { m["common/x.schema.json"] = file(`{}`) }, "declares $id <nil>"},
		{"external $ref is never fetched", func(m fstest.MapFS) {
			m["envelope.schema.json"] = file(`{"$id":"https://oisp.dev/schema/v0.1/envelope.schema.json",
				"properties":{"host":{"$ref":"https://example.com/host.json"}}}`)
		}, "https://example.com/host.json is not part of the OISP schema tree and will not be fetched"},
		{"event file without oneOf", func(m fstest.MapFS) {
			m["events/demo.schema.json"] = file(`{"$id":"https://oisp.dev/schema/v0.1/events/demo.schema.json"}`)
		}, "has no top-level oneOf"},
		{"oneOf entry that is not a local $defs ref", func(m fstest.MapFS) {
			m["events/demo.schema.json"] = file(`{"$id":"https://oisp.dev/schema/v0.1/events/demo.schema.json",
				"oneOf":[{"type":"object"}]}`)
		}, "oneOf[0] is not a"},
		{"oneOf entry pointing at a missing branch", func(m fstest.MapFS) {
			m["events/demo.schema.json"] = file(`{"$id":"https://oisp.dev/schema/v0.1/events/demo.schema.json",
				"oneOf":[{"$ref":"#/$defs/nothing"}]}`)
		}, "events/demo.schema.json#/$defs/nothing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tree := testSchemaTree()
			tc.edit(tree)
			v, err := NewValidatorFS(tree, ".")
			if err == nil {
				t.Fatalf("NewValidatorFS succeeded (%v), want error containing %q", v.EventTypes(), tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
	if _, err := NewValidatorFS(testSchemaTree(), "missing/dir"); err == nil {
		t.Error("NewValidatorFS accepted a missing root")
	}
}

// TestSchemaEmbeddedTree checks that the embedded files are exactly the
// twelve v0.1 schema files.
func TestSchemaEmbeddedTree(t *testing.T) {
	docs, err := loadSchemaDocs(SchemaFS, embeddedSchemaRoot)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rel := range docs {
		got = append(got, rel)
	}
	slices.Sort(got)
	want := []string{
		"common/actor.schema.json", "common/app.schema.json", "common/confidence.schema.json",
		"common/host.schema.json", "common/process.schema.json", "common/web_context.schema.json",
		"envelope.schema.json",
		"events/agent.schema.json", "events/ai.schema.json", "events/file.schema.json",
		"events/network.schema.json", "events/process.schema.json",
	}
	if !slices.Equal(got, want) {
		t.Errorf("embedded schema files = %v\nwant %v", got, want)
	}
}
