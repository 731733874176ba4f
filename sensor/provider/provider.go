// Package provider owns AI API decoding: the registry that says which hosts
// belong to which AI provider, and one decoder per API family (OpenAI chat
// completions, OpenAI responses, Anthropic messages, Gemini, Bedrock, …) that
// turns a finished HTTP exchange into OISP data. Decoders are pure functions
// of the exchange: no I/O, no state across exchanges (linking tool results to
// earlier tool calls is the pipeline's job).
package provider

import (
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// Target is what the registry knows about an exchange before decoding it:
// the provider the host belongs to and how sure we are.
type Target struct {
	// ProviderID is the sensor's provider id ("openai", "azure_openai",
	// "deepseek", "openrouter", "other", …). oisp.NewProvider maps it onto
	// the schema enum.
	ProviderID string
	// Host is the request host without port; Port is the port when known.
	Host string
	Port int
	// Known is true when the host is in the registry; false when an API
	// decoder recognised an unknown host by path and body shape (an
	// OpenAI-compatible local server, say). Confidence is lower then.
	Known bool
}

// API decodes one API family. Implementations live one per file.
type API interface {
	// Name is a stable id such as "openai.chat_completions".
	Name() string
	// Match reports whether this API handles the exchange, judging from the
	// target, the method and path, and (for unknown hosts) the body shape.
	Match(t Target, x *httpmsg.Exchange) bool
	// Decode extracts the exchange's AI data. It returns an error only when
	// the exchange cannot be decoded at all; partial understanding is
	// reported through Result.Partial and Result.Notes.
	Decode(t Target, x *httpmsg.Exchange, env Env) (*Result, error)
}

// Env is what decoders may use besides the exchange.
type Env struct {
	Registry *Registry
	Stats    stats.Recorder
}

// Result is one decoded AI exchange.
type Result struct {
	// Request is always set: ai.request for chat/completion, and for
	// embeddings too (request_type "embedding").
	Request *oisp.AIRequest
	// Response is set when a response was seen (nil for an exchange whose
	// response never arrived). For embeddings, Embedding is set instead.
	Response  *oisp.AIResponse
	Embedding *oisp.AIEmbedding
	// ToolResults are tool outputs the request carried back to the model
	// (OpenAI role "tool" messages, Anthropic tool_result blocks, Gemini
	// functionResponse parts). The pipeline links them to earlier calls.
	ToolResults []ToolResult
	// Notes say why the exchange is Partial (and what else was odd).
	Notes []string
	// Partial marks an exchange only partly understood (truncated body,
	// undecodable stream events).
	Partial bool
	// StreamEnded is set when a streamed body carried its format's own end
	// marker ([DONE], message_stop, the final response object, done:true,
	// Cohere's stream-end/message-end, Bedrock's metadata event or
	// invocation metrics, the closing bracket of Gemini's JSON array, a
	// Gemini SSE chunk that finishes every candidate, the Interactions
	// API's interaction.completed):
	// the response is whole even if the transport saw the client reset the
	// stream before the server's end-of-stream arrived.
	StreamEnded bool
	// Chain is set by APIs whose requests can build on state the provider
	// keeps instead of resending the history (nil for the others).
	Chain *Chain

	// responseRoom is where newResponse starts the response: allocated
	// with the result, for an exchange that has one (nil once used).
	responseRoom *responseParts
	// usageRoom is the block of the response's (or embedding's) usage
	// when newUsageBlock made it: finishResult prices the usage in the
	// block's room for the costs. (Partial and StreamEnded share a word,
	// so the result allocated with its response room keeps its size
	// class, 768 bytes with the allocation header.)
	usageRoom *usageBlock
}

// Chain is the provider-held state around an exchange. The pipeline puts
// a request that continues such state in the conversation of the answer
// that made it.
type Chain struct {
	// Continues is the state the request builds on: the response or
	// interaction it continues (OpenAI Responses previous_response_id,
	// Gemini Interactions previous_interaction_id), a compaction of the
	// history it carries, or a conversation the provider keeps (Responses
	// conversation).
	Continues string
	// ContinuedBy is the id a later request may continue the answer by:
	// the response or interaction id, or the compaction item's id.
	ContinuedBy string
}

// API is the name of the decoder that made the result, such as
// "openai.chat_completions" (the request's endpoint, which holds it, so
// that the result keeps its size class).
func (r *Result) API() string { return r.Request.Endpoint }

// ToolResult is a tool output found in a request.
type ToolResult struct {
	CallID  string
	Name    string // when the format names the tool
	Content string // flattened text of the result
	IsError bool
}
