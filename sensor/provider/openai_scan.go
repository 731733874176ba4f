package provider

import "github.com/oisp/oisp-sensor/sensor/stream/memo"

// The scans of the OpenAI chat shapes (see json_scan.go): the request, and
// the response, which is also the shape of every stream chunk.

// Member names of the scanned structs, as their json tags give them.
var (
	openaiChatRequestNames  = newFieldNames("model", "messages", "tools", "functions", "tool_choice", "function_call", "temperature", "top_p", "frequency_penalty", "presence_penalty", "max_tokens", "max_completion_tokens", "stop", "stream", "prompt")
	openaiMessageNames      = newFieldNames("role", "content", "name", "tool_call_id")
	openaiToolNames         = newFieldNames("type", "function", "name", "description")
	openaiFunctionNames     = newFieldNames("name", "description")
	openaiChatResponseNames = newFieldNames("id", "object", "model", "choices", "usage", "x_groq", "error", "message", "type", "code", "detail")
	openaiXGroqNames        = newFieldNames("usage")
	openaiChoiceNames       = newFieldNames("index", "message", "delta", "text", "finish_reason")
	openaiChoiceMsgNames    = newFieldNames("role", "content", "refusal", "reasoning_content", "reasoning", "tool_calls", "function_call")
	openaiToolCallNames     = newFieldNames("index", "id", "type", "function")
	openaiFunctionCallNames = newFieldNames("name", "arguments")
	openaiUsageNames        = newFieldNames("prompt_tokens", "completion_tokens", "total_tokens", "input_tokens", "output_tokens", "prompt_tokens_details", "input_tokens_details", "completion_tokens_details", "output_tokens_details", "prompt_cache_hit_tokens")
	openaiPromptDetailNames = newFieldNames("cached_tokens", "cache_write_tokens")
	openaiInputDetailNames  = newFieldNames("cached_tokens")
	openaiReasoningNames    = newFieldNames("reasoning_tokens")
)

func (b *openaiChatRequestBody) resetScan() { *b = openaiChatRequestBody{} }

func (b *openaiChatRequestBody) scanJSON(data []byte, strs *memo.Strings) bool {
	s := &jsonScan{b: data, memo: strs}
	return s.fields(&openaiChatRequestNames, func(name string) bool {
		switch name {
		case "model":
			return s.tolerant(&b.Model)
		case "messages":
			return scanSlice(s, &b.Messages, s.openaiMessage)
		case "tools":
			return scanSlice(s, &b.Tools, s.openaiTool)
		case "functions":
			return scanSlice(s, &b.Functions, s.openaiFunction)
		case "tool_choice":
			return s.raw(&b.ToolChoice)
		case "function_call":
			return s.raw(&b.FunctionCall)
		case "temperature":
			return s.tolerant(&b.Temperature)
		case "top_p":
			return s.tolerant(&b.TopP)
		case "frequency_penalty":
			return s.tolerant(&b.FrequencyPenalty)
		case "presence_penalty":
			return s.tolerant(&b.PresencePenalty)
		case "max_tokens":
			return s.tolerant(&b.MaxTokens)
		case "max_completion_tokens":
			return s.tolerant(&b.MaxCompletionTokens)
		case "stop":
			return s.raw(&b.Stop)
		case "stream":
			return s.tolerant(&b.Stream)
		case "prompt":
			return s.raw(&b.Prompt)
		}
		return false
	}) && s.end()
}

func (s *jsonScan) openaiMessage(m *openaiMessage) bool {
	return s.fields(&openaiMessageNames, func(name string) bool {
		switch name {
		case "role":
			return s.tolerant(&m.Role)
		case "content":
			return s.content(&m.Content, &m.contentPlain)
		case "name":
			return s.tolerant(&m.Name)
		case "tool_call_id":
			return s.tolerant(&m.ToolCallID)
		}
		return false
	})
}

func (s *jsonScan) openaiTool(t *openaiTool) bool {
	return s.fields(&openaiToolNames, func(name string) bool {
		switch name {
		case "type":
			return s.tolerant(&t.Type)
		case "function":
			return scanPointer(s, &t.Function, s.openaiFunction)
		case "name":
			return s.tolerant(&t.Name)
		case "description":
			return s.tolerant(&t.Description)
		}
		return false
	})
}

func (s *jsonScan) openaiFunction(f *openaiFunction) bool {
	return s.fields(&openaiFunctionNames, func(name string) bool {
		switch name {
		case "name":
			return s.tolerant(&f.Name)
		case "description":
			return s.tolerant(&f.Description)
		}
		return false
	})
}

// resetScan empties the body as reset does (keeping the choices array).
func (b *openaiChatResponseBody) resetScan() { b.reset() }

func (b *openaiChatResponseBody) scanJSON(data []byte, strs *memo.Strings) bool {
	s := &jsonScan{b: data, memo: strs}
	return s.fields(&openaiChatResponseNames, func(name string) bool {
		switch name {
		case "id":
			return s.tolerant(&b.ID)
		case "object":
			return s.tolerant(&b.Object)
		case "model":
			return s.tolerant(&b.Model)
		case "choices":
			return scanSlice(s, &b.Choices, func(c *openaiChoice) bool { return s.openaiChoice(c, b) })
		case "usage":
			return scanPointer(s, &b.Usage, s.openaiUsage)
		case "error":
			return s.raw(&b.Error)
		case "message":
			return s.tolerant(&b.Message)
		case "type":
			return s.tolerant(&b.Type)
		case "code":
			return s.tolerant(&b.Code)
		case "detail":
			return s.raw(&b.Detail)
		case "x_groq":
			return scanPointer(s, &b.XGroq, s.openaiXGroq)
		}
		return false
	}) && s.end()
}

func (s *jsonScan) openaiXGroq(x *openaiXGroq) bool {
	return s.fields(&openaiXGroqNames, func(string) bool { return scanPointer(s, &x.Usage, s.openaiUsage) })
}

// openaiChoice reads a choice of body b, its message or delta into one of
// b's spare messages.
func (s *jsonScan) openaiChoice(c *openaiChoice, b *openaiChatResponseBody) bool {
	message := func(p **openaiChoiceMessage) bool {
		if s.peek() == 'n' {
			*p = nil
			return s.literal("null")
		}
		*p = b.choiceMessage()
		return s.openaiChoiceMessage(*p)
	}
	return s.fields(&openaiChoiceNames, func(name string) bool {
		switch name {
		case "index":
			return s.tolerant(&c.Index)
		case "message":
			return message(&c.Message)
		case "delta":
			return message(&c.Delta)
		case "text":
			return s.tolerant(&c.Text)
		case "finish_reason":
			return s.tolerant(&c.FinishReason)
		}
		return false
	})
}

func (s *jsonScan) openaiChoiceMessage(m *openaiChoiceMessage) bool {
	return s.fields(&openaiChoiceMsgNames, func(name string) bool {
		switch name {
		case "role":
			return s.tolerant(&m.Role)
		case "content":
			return s.content(&m.Content, &m.contentPlain)
		case "refusal":
			return s.tolerant(&m.Refusal)
		case "reasoning_content":
			return s.tolerant(&m.ReasoningContent)
		case "reasoning":
			return s.tolerant(&m.Reasoning)
		case "tool_calls":
			return scanSlice(s, &m.ToolCalls, s.openaiToolCall)
		case "function_call":
			return scanPointer(s, &m.FunctionCall, s.openaiFunctionCall)
		}
		return false
	})
}

func (s *jsonScan) openaiToolCall(tc *openaiToolCallDelta) bool {
	return s.fields(&openaiToolCallNames, func(name string) bool {
		switch name {
		case "index":
			return s.tolerant(&tc.Index)
		case "id":
			return s.tolerant(&tc.ID)
		case "type":
			return s.tolerant(&tc.Type)
		case "function":
			return scanPointer(s, &tc.Function, s.openaiFunctionCall)
		}
		return false
	})
}

func (s *jsonScan) openaiFunctionCall(f *openaiFunctionCall) bool {
	return s.fields(&openaiFunctionCallNames, func(name string) bool {
		switch name {
		case "name":
			return s.tolerant(&f.Name)
		case "arguments":
			return s.raw(&f.Arguments)
		}
		return false
	})
}

func (s *jsonScan) openaiUsage(u *openaiUsageBody) bool {
	return s.fields(&openaiUsageNames, func(name string) bool {
		switch name {
		case "prompt_tokens":
			return s.tolerant(&u.PromptTokens)
		case "completion_tokens":
			return s.tolerant(&u.CompletionTokens)
		case "total_tokens":
			return s.tolerant(&u.TotalTokens)
		case "input_tokens":
			return s.tolerant(&u.InputTokens)
		case "output_tokens":
			return s.tolerant(&u.OutputTokens)
		case "prompt_cache_hit_tokens":
			return s.tolerant(&u.PromptCacheHitTokens)
		case "prompt_tokens_details":
			return scanPointer(s, &u.PromptTokensDetails, func(d *openaiPromptTokensDetails) bool {
				return s.fields(&openaiPromptDetailNames, func(name string) bool {
					if name == "cached_tokens" {
						return s.tolerant(&d.CachedTokens)
					}
					return s.tolerant(&d.CacheWriteTokens)
				})
			})
		case "input_tokens_details":
			return scanPointer(s, &u.InputTokensDetails, func(d *openaiInputTokensDetails) bool {
				return s.fields(&openaiInputDetailNames, func(string) bool { return s.tolerant(&d.CachedTokens) })
			})
		case "completion_tokens_details":
			return scanPointer(s, &u.CompletionTokensDetails, s.openaiReasoningDetails)
		case "output_tokens_details":
			return scanPointer(s, &u.OutputTokensDetails, s.openaiReasoningDetails)
		}
		return false
	})
}

func (s *jsonScan) openaiReasoningDetails(d *openaiReasoningDetails) bool {
	return s.fields(&openaiReasoningNames, func(string) bool { return s.tolerant(&d.ReasoningTokens) })
}

var openaiErrorObjectNames = newFieldNames("type", "message", "code", "error")

func (e *openaiErrorObject) resetScan() { *e = openaiErrorObject{} }

func (e *openaiErrorObject) scanJSON(data []byte, strs *memo.Strings) bool {
	s := &jsonScan{b: data, memo: strs}
	return s.fields(&openaiErrorObjectNames, func(name string) bool {
		switch name {
		case "type":
			return s.tolerant(&e.Type)
		case "message":
			return s.text(&e.Message)
		case "code":
			return s.tolerant(&e.Code)
		case "error":
			return s.raw(&e.Inner)
		}
		return false
	}) && s.end()
}

var embeddingsRequestNames = newFieldNames("model", "input", "dimensions", "encoding_format")

func (b *embeddingsRequestBody) resetScan() { *b = embeddingsRequestBody{} }

func (b *embeddingsRequestBody) scanJSON(data []byte, strs *memo.Strings) bool {
	s := &jsonScan{b: data, memo: strs}
	return s.fields(&embeddingsRequestNames, func(name string) bool {
		switch name {
		case "model":
			return s.tolerant(&b.Model)
		case "input":
			return s.raw(&b.Input)
		case "dimensions":
			return s.tolerant(&b.Dimensions)
		case "encoding_format":
			return s.tolerant(&b.EncodingFormat)
		}
		return false
	}) && s.end()
}

var (
	embeddingsResponseNames = newFieldNames("object", "model", "id", "data", "usage", "error", "message", "type", "code", "detail")
	embeddingsDatumNames    = newFieldNames("embedding")
)

func (b *embeddingsResponseBody) resetScan() { *b = embeddingsResponseBody{} }

func (b *embeddingsResponseBody) scanJSON(data []byte, strs *memo.Strings) bool {
	s := &jsonScan{b: data, memo: strs}
	return s.fields(&embeddingsResponseNames, func(name string) bool {
		switch name {
		case "object":
			return s.tolerant(&b.Object)
		case "model":
			return s.tolerant(&b.Model)
		case "id":
			return s.tolerant(&b.ID)
		case "data":
			return scanSlice(s, &b.Data, func(d *embeddingsDatum) bool {
				return s.fields(&embeddingsDatumNames, func(string) bool { return s.tolerant(&d.Embedding) })
			})
		case "usage":
			return scanPointer(s, &b.Usage, s.openaiUsage)
		case "error":
			return s.raw(&b.Error)
		case "message":
			return s.text(&b.Message)
		case "type":
			return s.tolerant(&b.Type)
		case "code":
			return s.tolerant(&b.Code)
		case "detail":
			return s.raw(&b.Detail)
		}
		return false
	}) && s.end()
}
