package provider

import "github.com/oisp/oisp-sensor/sensor/stream/memo"

// The scans of the arrays decoded apart from their bodies (see
// json_scan.go): a Responses API request's input items, content-part
// arrays (chat and Responses content) and Anthropic request content. (The
// Responses API request and response object themselves are left to the
// decoder: scanned, they cost 0.9% more instructions of the corpus pass
// than the allocations they save.) A Responses stream's small events are
// scanned too (responsesEvent.scanJSON, called by the stream
// itself).

// Member names of the scanned structs, as their json tags give them.
var (
	responsesItemNames    = newFieldNames("type", "id", "role", "content", "call_id", "name", "arguments", "input", "output", "summary", "status")
	openaiPartNames       = newFieldNames("type", "text", "refusal", "thinking")
	anthropicContentNames = newFieldNames("type", "text", "tool_use_id", "content", "is_error", "source")
	anthropicMediaNames   = newFieldNames("media_type")
)

// responsesItemList is a request's input item list as a decode target of
// its own (decodeLoose picks scans by the target's type).
type responsesItemList []responsesItem

func (l *responsesItemList) resetScan() { *l = nil }

func (l *responsesItemList) scanJSON(data []byte, strs *memo.Strings) bool {
	s := &jsonScan{b: data, memo: strs}
	return scanSlice(s, (*[]responsesItem)(l), s.responsesItem) && s.end()
}

func (s *jsonScan) responsesItem(it *responsesItem) bool {
	return s.fields(&responsesItemNames, func(name string) bool {
		switch name {
		case "type":
			return s.tolerant(&it.Type)
		case "id":
			return s.tolerant(&it.ID)
		case "role":
			return s.tolerant(&it.Role)
		case "content":
			return s.raw(&it.Content)
		case "call_id":
			return s.tolerant(&it.CallID)
		case "name":
			return s.tolerant(&it.Name)
		case "arguments":
			return s.raw(&it.Arguments)
		case "input":
			return s.raw(&it.Input)
		case "output":
			return s.raw(&it.Output)
		case "summary":
			return scanSlice(s, &it.Summary, s.openaiPart)
		case "status":
			return s.tolerant(&it.Status)
		}
		return false
	})
}

// openaiPartList is a content-part array as a decode target of its own.
type openaiPartList []openaiPart

func (l *openaiPartList) resetScan() { *l = nil }

func (l *openaiPartList) scanJSON(data []byte, strs *memo.Strings) bool {
	s := &jsonScan{b: data, memo: strs}
	return scanSlice(s, (*[]openaiPart)(l), s.openaiPart) && s.end()
}

func (s *jsonScan) openaiPart(p *openaiPart) bool {
	return s.fields(&openaiPartNames, func(name string) bool {
		switch name {
		case "type":
			return s.tolerant(&p.Type)
		case "text":
			return s.tolerant(&p.Text)
		case "refusal":
			return s.tolerant(&p.Refusal)
		}
		return s.raw(&p.Thinking)
	})
}

// anthropicContentList is an Anthropic request content array as a decode
// target of its own.
type anthropicContentList []anthropicContentBlock

func (l *anthropicContentList) resetScan() { *l = nil }

func (l *anthropicContentList) scanJSON(data []byte, strs *memo.Strings) bool {
	s := &jsonScan{b: data, memo: strs}
	return scanSlice(s, (*[]anthropicContentBlock)(l), s.anthropicContentBlock) && s.end()
}

func (s *jsonScan) anthropicContentBlock(bl *anthropicContentBlock) bool {
	return s.fields(&anthropicContentNames, func(name string) bool {
		switch name {
		case "type":
			return s.tolerant(&bl.Type)
		case "text":
			return s.tolerant(&bl.Text)
		case "tool_use_id":
			return s.tolerant(&bl.ToolUseID)
		case "content":
			return s.raw(&bl.Content)
		case "is_error":
			return s.tolerant(&bl.IsError)
		}
		return scanPointer(s, &bl.Source, func(src *anthropicMediaSource) bool {
			return s.fields(&anthropicMediaNames, func(string) bool { return s.tolerant(&src.MediaType) })
		})
	})
}

// responsesEventNames are the members a Responses API output event is
// scanned for; one with a response object or an item is left to the
// decoder, as are the stream's other events (see responsesStream.add).
var responsesEventNames = newFieldNames("type", "response", "item", "delta", "item_id", "code", "message", "error")

// resetScan empties the event as reset does.
func (e *responsesEvent) resetScan() { e.reset() }

// scanJSON reads the many small events of a stream (deltas and their
// .done) with the memo's type and item id. The delta is copied into the
// event's own buffer: reset keeps that buffer for the decoder to append
// to, so it must never be the body's bytes.
func (e *responsesEvent) scanJSON(data []byte, strs *memo.Strings) bool {
	s := &jsonScan{b: data, memo: strs}
	return s.fields(&responsesEventNames, func(name string) bool {
		switch name {
		case "type":
			return s.tolerant(&e.Type)
		case "delta":
			raw, ok := s.value()
			e.Delta = append(e.Delta[:0], raw...)
			return ok
		case "item_id":
			return s.tolerant(&e.ItemID)
		case "code":
			return s.tolerant(&e.Code)
		case "message":
			return s.tolerant(&e.Message)
		case "error":
			return s.raw(&e.Error)
		}
		return false // "response", "item"
	}) && s.end()
}
