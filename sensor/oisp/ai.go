package oisp

// Provider is `provider_info`. Name is always one of the schema's enum
// values; ID keeps the sensor's own provider id when Name is "other" or a
// coarser family (an extra property: event branches are open).
type Provider struct {
	Name           string `json:"name,omitempty"`
	ID             string `json:"id,omitempty"`
	Endpoint       string `json:"endpoint,omitempty"`
	Host           string `json:"host,omitempty"`
	Region         string `json:"region,omitempty"`
	OrganizationID string `json:"organization_id,omitempty"`
	ProjectID      string `json:"project_id,omitempty"`
}

// Model is `model_info`.
type Model struct {
	ID              string `json:"id,omitempty"`
	Name            string `json:"name,omitempty"`
	Family          string `json:"family,omitempty"`
	Version         string `json:"version,omitempty"`
	ContextWindow   int    `json:"context_window,omitempty"`
	MaxOutputTokens int    `json:"max_output_tokens,omitempty"`
	// Requested is the model as the request named it, when the response
	// answered with a different id (extra property).
	Requested string `json:"requested,omitempty"`
}

// Auth is `auth_info`: never the key itself.
type Auth struct {
	Type        string `json:"type,omitempty"` // api_key, oauth, bearer_token, aws_sig_v4, … (free)
	AccountType string `json:"account_type,omitempty"`
	KeyPrefix   string `json:"key_prefix,omitempty"` // at most 8 characters
	KeyHash     string `json:"key_hash,omitempty"`
}

// Message is `message`. Content is the flattened text.
type Message struct {
	Role          string `json:"role,omitempty"`
	Content       string `json:"content,omitempty"`
	ContentHash   string `json:"content_hash,omitempty"`
	ContentLength int    `json:"content_length,omitempty"`
	HasImages     bool   `json:"has_images,omitempty"`
	ImageCount    int    `json:"image_count,omitempty"`
	ToolCallID    string `json:"tool_call_id,omitempty"`
	Name          string `json:"name,omitempty"`
	// OriginalRole keeps a provider role mapped onto the enum (developer →
	// system, model → assistant). Extra property.
	OriginalRole string `json:"original_role,omitempty"`
}

// ToolDefinition is `tool_definition`.
type ToolDefinition struct {
	Name        string `json:"name,omitempty"`
	Type        string `json:"type,omitempty"` // function, code_interpreter, retrieval, computer_use, other
	Description string `json:"description,omitempty"`
}

// ToolCall is `tool_call` as found in a response. Arguments is the raw JSON
// text the model produced (a string); ArgumentsHash is its hash.
type ToolCall struct {
	ID            string `json:"id,omitempty"`
	Name          string `json:"name,omitempty"`
	Type          string `json:"type,omitempty"`
	Arguments     string `json:"arguments,omitempty"`
	ArgumentsHash string `json:"arguments_hash,omitempty"`
}

// Usage is `usage`. Pointers keep reported zeros while omitting unknowns.
// PromptTokens counts all input including cache reads and writes;
// CachedTokens counts cache reads; CacheCreationTokens (extra property)
// counts cache writes.
type Usage struct {
	PromptTokens        *int     `json:"prompt_tokens,omitempty"`
	CompletionTokens    *int     `json:"completion_tokens,omitempty"`
	TotalTokens         *int     `json:"total_tokens,omitempty"`
	CachedTokens        *int     `json:"cached_tokens,omitempty"`
	ReasoningTokens     *int     `json:"reasoning_tokens,omitempty"`
	CacheCreationTokens *int     `json:"cache_creation_tokens,omitempty"`
	InputCostUSD        *float64 `json:"input_cost_usd,omitempty"`
	OutputCostUSD       *float64 `json:"output_cost_usd,omitempty"`
	TotalCostUSD        *float64 `json:"total_cost_usd,omitempty"`
	// Cost is "unknown" when no price exists for the model (extra property).
	Cost string `json:"cost,omitempty"`
}

// Parameters are the request's sampling parameters.
type Parameters struct {
	Temperature      *float64 `json:"temperature,omitempty"`
	TopP             *float64 `json:"top_p,omitempty"`
	MaxTokens        *int     `json:"max_tokens,omitempty"`
	FrequencyPenalty *float64 `json:"frequency_penalty,omitempty"`
	PresencePenalty  *float64 `json:"presence_penalty,omitempty"`
	Stop             []string `json:"stop,omitempty"`
}

// Empty reports whether no parameter is set.
func (p *Parameters) Empty() bool {
	return p == nil || (p.Temperature == nil && p.TopP == nil && p.MaxTokens == nil &&
		p.FrequencyPenalty == nil && p.PresencePenalty == nil && len(p.Stop) == 0)
}

// Request types (schema enum).
const (
	RequestChat       = "chat"
	RequestCompletion = "completion"
	RequestEmbedding  = "embedding"
	RequestImage      = "image"
	RequestAudio      = "audio"
	RequestModeration = "moderation"
	RequestOther      = "other"
)

// AIRequest is the data of ai.request.
type AIRequest struct {
	RequestID        string           `json:"request_id,omitempty"`
	ConversationID   string           `json:"conversation_id,omitempty"`
	Provider         *Provider        `json:"provider,omitempty"`
	Model            *Model           `json:"model,omitempty"`
	Auth             *Auth            `json:"auth,omitempty"`
	RequestType      string           `json:"request_type,omitempty"`
	Endpoint         string           `json:"endpoint,omitempty"` // API family, e.g. "openai.chat_completions" (extra)
	Streaming        *bool            `json:"streaming,omitempty"`
	Messages         []Message        `json:"messages,omitempty"`
	MessagesCount    int              `json:"messages_count,omitempty"`
	HasSystemPrompt  bool             `json:"has_system_prompt,omitempty"`
	SystemPromptHash string           `json:"system_prompt_hash,omitempty"`
	Tools            []ToolDefinition `json:"tools,omitempty"`
	ToolsCount       int              `json:"tools_count,omitempty"`
	ToolChoice       string           `json:"tool_choice,omitempty"`
	Parameters       *Parameters      `json:"parameters,omitempty"`
	HasImages        bool             `json:"has_images,omitempty"`
	ImageCount       int              `json:"image_count,omitempty"`
	EstimatedTokens  int              `json:"estimated_tokens,omitempty"`
	// Input summarises a prompt that is not a message list (legacy
	// completions, embeddings input count). Extra property.
	InputCount int `json:"input_count,omitempty"`
}

// Finish reasons (schema enum).
const (
	FinishStop          = "stop"
	FinishLength        = "length"
	FinishToolCalls     = "tool_calls"
	FinishContentFilter = "content_filter"
	FinishError         = "error"
	FinishOther         = "other"
)

// Error is a provider error.
type Error struct {
	Type    string `json:"type,omitempty"`
	Message string `json:"message,omitempty"`
	Code    string `json:"code,omitempty"`
}

// Choice is one entry of `choices`.
type Choice struct {
	Index        int      `json:"index"`
	Message      *Message `json:"message,omitempty"`
	FinishReason string   `json:"finish_reason,omitempty"`
	// RawFinishReason keeps the provider's own value (extra property).
	RawFinishReason string `json:"raw_finish_reason,omitempty"`
}

// Thinking summarises reasoning content (extra property; the schema has no
// field for it).
type Thinking struct {
	Content       string `json:"content,omitempty"`
	ContentLength int    `json:"content_length,omitempty"`
	ContentHash   string `json:"content_hash,omitempty"`
}

// AIResponse is the data of ai.response.
type AIResponse struct {
	RequestID          string     `json:"request_id,omitempty"`
	ConversationID     string     `json:"conversation_id,omitempty"`
	ProviderRequestID  string     `json:"provider_request_id,omitempty"`
	Provider           *Provider  `json:"provider,omitempty"`
	Model              *Model     `json:"model,omitempty"`
	StatusCode         int        `json:"status_code,omitempty"`
	Success            *bool      `json:"success,omitempty"`
	Error              *Error     `json:"error,omitempty"`
	Choices            []Choice   `json:"choices,omitempty"`
	ToolCalls          []ToolCall `json:"tool_calls,omitempty"`
	ToolCallsCount     int        `json:"tool_calls_count,omitempty"`
	Usage              *Usage     `json:"usage,omitempty"`
	LatencyMS          *int64     `json:"latency_ms,omitempty"`
	TimeToFirstTokenMS *int64     `json:"time_to_first_token_ms,omitempty"`
	WasCached          *bool      `json:"was_cached,omitempty"`
	FinishReason       string     `json:"finish_reason,omitempty"`
	Streaming          *bool      `json:"streaming,omitempty"` // extra
	Thinking           *Thinking  `json:"thinking,omitempty"`  // extra
	// StreamEvents counts the stream events reassembled (extra).
	StreamEvents int `json:"stream_events,omitempty"`
}

// AIEmbedding is the data of ai.embedding.
type AIEmbedding struct {
	RequestID      string    `json:"request_id,omitempty"`
	Provider       *Provider `json:"provider,omitempty"`
	Model          *Model    `json:"model,omitempty"`
	InputCount     int       `json:"input_count,omitempty"`
	TotalTokens    *int      `json:"total_tokens,omitempty"`
	Dimensions     int       `json:"dimensions,omitempty"`
	LatencyMS      *int64    `json:"latency_ms,omitempty"`
	StatusCode     int       `json:"status_code,omitempty"` // extra
	Success        *bool     `json:"success,omitempty"`     // extra
	Error          *Error    `json:"error,omitempty"`       // extra
	Usage          *Usage    `json:"usage,omitempty"`       // extra
	EmbeddingCount int       `json:"embedding_count,omitempty"`
}

// ToolInfo is agent `tool_info`.
type ToolInfo struct {
	Name        string `json:"name,omitempty"`
	Type        string `json:"type,omitempty"` // tool_info type enum
	Provider    string `json:"provider,omitempty"`
	Server      string `json:"server,omitempty"`
	Description string `json:"description,omitempty"`
}

// ToolCallEvent is the data of agent.tool_call. Arguments is an object (the
// parsed JSON arguments); when they are not a JSON object only
// ArgumentsHash is set.
type ToolCallEvent struct {
	Tool          ToolInfo       `json:"tool"`
	CallID        string         `json:"call_id,omitempty"`
	TriggeredBy   string         `json:"triggered_by,omitempty"`
	Arguments     map[string]any `json:"arguments,omitempty"`
	ArgumentsHash string         `json:"arguments_hash,omitempty"`
	RequestID     string         `json:"request_id,omitempty"` // extra: the ai request that produced it
}

// ToolResultEvent is the data of agent.tool_result.
type ToolResultEvent struct {
	Tool            *ToolInfo `json:"tool,omitempty"`
	CallID          string    `json:"call_id"`
	Success         *bool     `json:"success,omitempty"`
	Error           *Error    `json:"error,omitempty"`
	Result          string    `json:"result,omitempty"`
	ResultHash      string    `json:"result_hash,omitempty"`
	ResultSizeBytes int       `json:"result_size_bytes,omitempty"`
	RequestID       string    `json:"request_id,omitempty"` // extra: the ai request that carried it
}
