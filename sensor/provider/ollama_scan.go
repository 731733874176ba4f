package provider

import "github.com/oisp/oisp-sensor/sensor/stream/memo"

// The scan of an Ollama NDJSON line (see json_scan.go): each line of a
// chat or generate stream repeats the model, which the stream's memo
// holds, and carries a few words of text, read without it. A line with
// tool calls or images is left to the decoder.

// Member names of the scanned structs, as their json tags give them.
var (
	ollamaLineNames    = newFieldNames("model", "message", "response", "thinking", "done", "done_reason", "prompt_eval_count", "eval_count", "error", "embeddings", "embedding")
	ollamaMessageNames = newFieldNames("role", "content", "thinking", "images", "tool_calls", "tool_name", "tool_call_id")
)

func (l *ollamaLine) resetScan() { *l = ollamaLine{} }

func (l *ollamaLine) scanJSON(data []byte, strs *memo.Strings) bool {
	s := &jsonScan{b: data, memo: strs}
	return s.fields(&ollamaLineNames, func(name string) bool {
		switch name {
		case "model":
			return s.tolerant(&l.Model)
		case "message":
			return scanPointer(s, &l.Message, s.ollamaMessage)
		case "response":
			return scanPointer(s, &l.Response, s.text)
		case "thinking":
			return s.text(&l.Thinking)
		case "done":
			return s.tolerant(&l.Done)
		case "done_reason":
			return s.tolerant(&l.DoneReason)
		case "prompt_eval_count":
			return s.tolerant(&l.PromptEvalCount)
		case "eval_count":
			return s.tolerant(&l.EvalCount)
		case "error":
			return s.raw(&l.Error)
		case "embeddings":
			return s.raw(&l.Embeddings)
		}
		return s.raw(&l.Embedding)
	}) && s.end()
}

func (s *jsonScan) ollamaMessage(m *ollamaMessage) bool {
	return s.fields(&ollamaMessageNames, func(name string) bool {
		switch name {
		case "role":
			return s.tolerant(&m.Role)
		case "content":
			return s.text(&m.Content)
		case "thinking":
			return s.text(&m.Thinking)
		case "tool_name":
			return s.tolerant(&m.ToolName)
		case "tool_call_id":
			return s.tolerant(&m.ToolCallID)
		case "images":
			m.Images = nil
		default:
			m.ToolCalls = nil
		}
		// Images and tool calls are the decoder's, but for null.
		return s.peek() == 'n' && s.literal("null")
	})
}
