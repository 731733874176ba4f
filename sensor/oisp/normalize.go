package oisp

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unsafe"
)

// Hash returns the sensor's content hash: "sha256:" and the first 16 hex
// digits of the SHA-256 of s. Sixteen digits identify content for
// correlation without making the hash a practical lookup key.
func Hash(s string) string {
	var out [HashLen]byte
	return string(AppendHash(out[:0], s))
}

// HashLen is the length of every content hash Hash returns.
const HashLen = len(hashPrefix) + 16

const hashPrefix = "sha256:"

// AppendHash appends Hash(s) to dst, so that a caller hashing many
// contents can write their hashes into one buffer and slice strings out
// of it instead of allocating one string per hash.
func AppendHash(dst []byte, s string) []byte {
	// Hashing the string's bytes in place (Sum256 neither keeps nor
	// changes them) saves copying prompts that run to megabytes.
	sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(s), len(s)))
	dst = append(dst, hashPrefix...)
	n := len(dst)
	dst = append(dst, make([]byte, 16)...)
	hex.Encode(dst[n:], sum[:8])
	return dst
}

// providerNames is the schema's provider_info.name enum.
var providerNames = map[string]bool{
	"openai": true, "anthropic": true, "google": true, "azure_openai": true,
	"aws_bedrock": true, "cohere": true, "mistral": true, "groq": true,
	"together": true, "fireworks": true, "replicate": true, "huggingface": true,
	"ollama": true, "lmstudio": true, "vllm": true, "other": true,
}

// ProviderName maps a sensor provider id onto the schema enum. Ids outside
// the enum become "other"; callers keep the id in Provider.ID.
func ProviderName(id string) string {
	switch id {
	case "google_vertex", "vertex", "gemini", "vertex_ai":
		return "google"
	case "togetherai":
		return "together"
	case "bedrock":
		return "aws_bedrock"
	case "azure", "azure_ai":
		return "azure_openai"
	case "hf", "hugging_face":
		return "huggingface"
	}
	if providerNames[id] {
		return id
	}
	return "other"
}

// NewProvider returns a Provider for a sensor provider id, keeping the id
// when the enum name differs.
func NewProvider(id, endpoint string) *Provider {
	p := &Provider{Name: ProviderName(id), Endpoint: endpoint}
	if p.Name != id {
		p.ID = id
	}
	return p
}

// FinishReason maps a provider's raw finish/stop reason onto the schema
// enum. Unknown non-empty values become "other"; empty stays empty.
func FinishReason(raw string) string {
	switch strings.ToLower(raw) {
	case "":
		return ""
	case "stop", "end_turn", "stop_sequence", "complete", "completed", "eos", "finish_reason_stop", "end":
		return FinishStop
	case "length", "max_tokens", "max_output_tokens", "model_length", "max_tokens_reached", "incomplete":
		return FinishLength
	case "tool_calls", "function_call", "tool_use", "tool_call", "tools":
		return FinishToolCalls
	case "content_filter", "content_filtered", "safety", "recitation", "blocklist",
		"prohibited_content", "spii", "refusal", "guardrail_intervened", "image_safety":
		return FinishContentFilter
	case "error", "failed", "malformed_function_call":
		return FinishError
	}
	return FinishOther
}

// Roles in the schema's message.role enum.
var roles = map[string]bool{"system": true, "user": true, "assistant": true, "tool": true, "function": true}

// Role maps a provider role onto the schema enum and returns the original
// when it had to change it ("" otherwise).
func Role(raw string) (role, original string) {
	switch raw {
	case "system", "user", "assistant", "tool", "function":
		// Already the schema's (every message of most requests): no
		// lowering, no lookup.
		return raw, ""
	}
	r := strings.ToLower(raw)
	switch r {
	case "developer":
		return "system", raw
	case "model", "chatbot", "ai":
		return "assistant", raw
	case "human":
		return "user", raw
	case "ipython", "tool_result":
		return "tool", raw
	}
	if roles[r] {
		if r != raw {
			return r, raw
		}
		return r, ""
	}
	if raw == "" {
		return "", ""
	}
	return "user", raw
}

// ToolChoice renders a provider tool_choice (string or object) as the
// schema's string: "auto", "none", "required", or the forced tool's name.
func ToolChoice(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		switch t {
		case "any":
			return "required"
		}
		return t
	case map[string]any:
		if typ, _ := t["type"].(string); typ != "" {
			switch typ {
			case "auto", "none", "required":
				return typ
			case "any":
				return "required"
			}
		}
		if name, _ := t["name"].(string); name != "" {
			return name
		}
		if fn, ok := t["function"].(map[string]any); ok {
			if name, _ := fn["name"].(string); name != "" {
				return name
			}
		}
		return "specific"
	}
	return "specific"
}

// ToolType maps a tool definition's type onto the tool_definition enum.
func ToolType(raw string) string {
	switch {
	case raw == "" || raw == "function" || raw == "custom":
		return "function"
	case raw == "code_interpreter":
		return "code_interpreter"
	case raw == "retrieval" || raw == "file_search":
		return "file_search"
	case strings.HasPrefix(raw, "computer"):
		return "computer_use"
	}
	return "other"
}

// KeyPrefix returns at most the first 8 characters of a credential, and
// only when the credential is long enough that 8 characters reveal nothing
// useful (the schema's maxLength is 8).
func KeyPrefix(key string) string {
	key = strings.TrimSpace(key)
	if len(key) < 20 {
		return ""
	}
	if i := strings.IndexAny(key, "-_"); i > 0 && i < 8 {
		// keep the vendor prefix ("sk-", "sk-ant-…") up to 8 characters
		return key[:min(8, len(key))]
	}
	return key[:min(4, len(key))]
}

// Ptr returns a pointer to v (for optional numbers and booleans).
func Ptr[T any](v T) *T { return &v }
