package provider

import "github.com/oisp/oisp-sensor/sensor/stream/memo"

// The scan of the OpenAI Responses API request (see json_scan.go), whose
// input item list it reads in place (the items' scan is in
// parts_scan.go). The response object is left to the decoder: scanned,
// it saves some 300 allocations of the corpus pass for 0.3% more
// instructions (its thirty-odd members the sensor does not read are
// skipped one by one).

// responsesRequestNames are the request's member names, as its json tags
// give them.
var responsesRequestNames = newFieldNames("model", "input", "instructions", "tools", "tool_choice", "temperature", "top_p", "max_output_tokens", "stream", "previous_response_id", "conversation")

func (b *responsesRequestBody) resetScan() { *b = responsesRequestBody{} }

func (b *responsesRequestBody) scanJSON(data []byte, strs *memo.Strings) bool {
	s := &jsonScan{b: data, memo: strs}
	return s.fields(&responsesRequestNames, func(name string) bool {
		switch name {
		case "model":
			return s.tolerant(&b.Model)
		case "input":
			// An item list is read in place (the decoder's path reads
			// it again from Input).
			if s.peek() != '[' {
				return s.raw(&b.Input)
			}
			start := s.i
			b.inputScanned = scanSlice(s, (*[]responsesItem)(&b.inputItems), s.responsesItem)
			b.Input = s.b[start:s.i]
			return b.inputScanned
		case "instructions":
			return s.raw(&b.Instructions)
		case "tools":
			return scanSlice(s, &b.Tools, s.openaiTool)
		case "tool_choice":
			return s.raw(&b.ToolChoice)
		case "temperature":
			return s.tolerant(&b.Temperature)
		case "top_p":
			return s.tolerant(&b.TopP)
		case "max_output_tokens":
			return s.tolerant(&b.MaxOutputTokens)
		case "stream":
			return s.tolerant(&b.Stream)
		case "previous_response_id":
			return s.tolerant(&b.PreviousResponseID)
		case "conversation":
			return s.raw(&b.Conversation)
		}
		return false
	}) && s.end()
}
