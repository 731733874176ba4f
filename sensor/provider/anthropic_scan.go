package provider

import "github.com/oisp/oisp-sensor/sensor/stream/memo"

// The scans of the Anthropic Messages shapes (see json_scan.go): the
// request, the response, and each stream event.

// Member names of the scanned structs, as their json tags give them.
var (
	anthropicRequestNames  = newFieldNames("model", "system", "messages", "tools", "tool_choice", "max_tokens", "temperature", "top_p", "stop_sequences", "stream", "prompt", "max_tokens_to_sample")
	anthropicMessageNames  = newFieldNames("role", "content")
	anthropicToolNames     = newFieldNames("type", "name", "description")
	anthropicResponseNames = newFieldNames("type", "id", "model", "role", "content", "stop_reason", "usage", "error", "request_id", "input_tokens", "completion", "message")
	anthropicBlockNames    = newFieldNames("type", "text", "thinking", "data", "id", "name", "input", "tool_use_id", "content", "is_error", "source")
	anthropicSourceNames   = newFieldNames("type", "media_type")
	anthropicUsageNames    = newFieldNames("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
	anthropicEventNames    = newFieldNames("type", "index", "message", "content_block", "delta", "usage", "error", "completion", "stop_reason", "model", "id")
	anthropicDeltaNames    = newFieldNames("type", "text", "partial_json", "thinking", "stop_reason")
)

func (b *anthropicRequestBody) resetScan() { *b = anthropicRequestBody{} }

func (b *anthropicRequestBody) scanJSON(data []byte, strs *memo.Strings) bool {
	s := &jsonScan{b: data, memo: strs}
	return s.fields(&anthropicRequestNames, func(name string) bool {
		switch name {
		case "model":
			return s.tolerant(&b.Model)
		case "system":
			return s.raw(&b.System)
		case "messages":
			return scanSlice(s, &b.Messages, s.anthropicMessage)
		case "tools":
			return scanSlice(s, &b.Tools, s.anthropicTool)
		case "tool_choice":
			return s.raw(&b.ToolChoice)
		case "max_tokens":
			return s.tolerant(&b.MaxTokens)
		case "temperature":
			return s.tolerant(&b.Temperature)
		case "top_p":
			return s.tolerant(&b.TopP)
		case "stop_sequences":
			return s.raw(&b.StopSequences)
		case "stream":
			return s.tolerant(&b.Stream)
		case "prompt":
			return s.tolerant(&b.Prompt)
		case "max_tokens_to_sample":
			return s.tolerant(&b.MaxTokensToSample)
		}
		return false
	}) && s.end()
}

func (s *jsonScan) anthropicMessage(m *anthropicMessage) bool {
	return s.fields(&anthropicMessageNames, func(name string) bool {
		if name == "role" {
			return s.tolerant(&m.Role)
		}
		return s.raw(&m.Content)
	})
}

func (s *jsonScan) anthropicTool(t *anthropicTool) bool {
	return s.fields(&anthropicToolNames, func(name string) bool {
		switch name {
		case "type":
			return s.tolerant(&t.Type)
		case "name":
			return s.tolerant(&t.Name)
		}
		return s.tolerant(&t.Description)
	})
}

func (b *anthropicResponseBody) resetScan() { *b = anthropicResponseBody{} }

func (b *anthropicResponseBody) scanJSON(data []byte, strs *memo.Strings) bool {
	s := &jsonScan{b: data, memo: strs}
	return s.anthropicResponse(b) && s.end()
}

func (s *jsonScan) anthropicResponse(b *anthropicResponseBody) bool {
	return s.fields(&anthropicResponseNames, func(name string) bool {
		switch name {
		case "type":
			return s.tolerant(&b.Type)
		case "id":
			return s.tolerant(&b.ID)
		case "model":
			return s.tolerant(&b.Model)
		case "role":
			return s.tolerant(&b.Role)
		case "content":
			return scanSlice(s, &b.Content, s.anthropicBlock)
		case "stop_reason":
			return s.tolerant(&b.StopReason)
		case "usage":
			return scanPointer(s, &b.Usage, s.anthropicUsage)
		case "error":
			return s.raw(&b.Error)
		case "request_id":
			return s.tolerant(&b.RequestID)
		case "input_tokens":
			return s.tolerant(&b.InputTokens)
		case "completion":
			return s.tolerantPointer(&b.Completion)
		case "message":
			return s.tolerant(&b.Message)
		}
		return false
	})
}

func (s *jsonScan) anthropicBlock(bl *anthropicBlock) bool {
	return s.fields(&anthropicBlockNames, func(name string) bool {
		switch name {
		case "type":
			return s.tolerant(&bl.Type)
		case "text":
			return s.tolerant(&bl.Text)
		case "thinking":
			return s.tolerant(&bl.Thinking)
		case "data":
			return s.tolerant(&bl.Data)
		case "id":
			return s.tolerant(&bl.ID)
		case "name":
			return s.tolerant(&bl.Name)
		case "input":
			return s.raw(&bl.Input)
		case "tool_use_id":
			return s.tolerant(&bl.ToolUseID)
		case "content":
			return s.raw(&bl.Content)
		case "is_error":
			return s.tolerant(&bl.IsError)
		case "source":
			return scanPointer(s, &bl.Source, func(src *anthropicBlockSource) bool {
				return s.fields(&anthropicSourceNames, func(name string) bool {
					if name == "type" {
						return s.tolerant(&src.Type)
					}
					return s.tolerant(&src.MediaType)
				})
			})
		}
		return false
	})
}

func (s *jsonScan) anthropicUsage(u *anthropicUsageBody) bool {
	return s.fields(&anthropicUsageNames, func(name string) bool {
		switch name {
		case "input_tokens":
			return s.tolerant(&u.InputTokens)
		case "output_tokens":
			return s.tolerant(&u.OutputTokens)
		case "cache_creation_input_tokens":
			return s.tolerant(&u.CacheCreationInputTokens)
		}
		return s.tolerant(&u.CacheReadInputTokens)
	})
}

func (ev *anthropicEvent) resetScan() { *ev = anthropicEvent{} }

func (ev *anthropicEvent) scanJSON(data []byte, strs *memo.Strings) bool {
	s := &jsonScan{b: data, memo: strs}
	return s.fields(&anthropicEventNames, func(name string) bool {
		switch name {
		case "type":
			return s.tolerant(&ev.Type)
		case "index":
			return s.tolerant(&ev.Index)
		case "message":
			return scanPointer(s, &ev.Message, s.anthropicResponse)
		case "content_block":
			return scanPointer(s, &ev.ContentBlock, s.anthropicBlock)
		case "delta":
			return scanPointer(s, &ev.Delta, s.anthropicDelta)
		case "usage":
			return scanPointer(s, &ev.Usage, s.anthropicUsage)
		case "error":
			return s.raw(&ev.Error)
		case "completion":
			return s.tolerantPointer(&ev.Completion)
		case "stop_reason":
			return s.tolerant(&ev.StopReason)
		case "model":
			return s.tolerant(&ev.Model)
		case "id":
			return s.tolerant(&ev.ID)
		}
		return false
	}) && s.end()
}

func (s *jsonScan) anthropicDelta(d *anthropicDelta) bool {
	return s.fields(&anthropicDeltaNames, func(name string) bool {
		switch name {
		case "type":
			return s.tolerant(&d.Type)
		case "text":
			return s.tolerant(&d.Text)
		case "partial_json":
			return s.tolerant(&d.PartialJSON)
		case "thinking":
			return s.tolerant(&d.Thinking)
		case "stop_reason":
			return s.tolerant(&d.StopReason)
		}
		return false
	})
}
