package provider

import (
	"slices"

	"github.com/oisp/oisp-sensor/sensor/stream/memo"
)

// The scans of the Gemini generateContent shapes (see json_scan.go): the
// request, its contents (decoded apart from the body, as an array or one
// content), and the response, which is also the shape of every stream
// chunk.

// Member names of the scanned structs, as their json tags give them.
var (
	geminiRequestNames    = newFieldNames("model", "contents", "systemInstruction", "system_instruction", "tools", "toolConfig", "tool_config", "generationConfig", "generation_config", "cachedContent", "generateContentRequest")
	geminiContentNames    = newFieldNames("role", "parts")
	geminiPartNames       = newFieldNames("text", "thought", "inlineData", "inline_data", "fileData", "file_data", "functionCall", "function_call", "functionResponse", "function_response")
	geminiBlobNames       = newFieldNames("mimeType", "mime_type", "data", "fileUri", "file_uri")
	geminiCallNames       = newFieldNames("id", "name", "args", "response")
	geminiDeclNames       = newFieldNames("name", "description")
	geminiToolConfigNames = newFieldNames("functionCallingConfig", "function_calling_config")
	geminiCallingNames    = newFieldNames("mode", "allowedFunctionNames", "allowed_function_names")
	geminiGenConfigNames  = newFieldNames("temperature", "topP", "top_p", "maxOutputTokens", "max_output_tokens", "stopSequences", "stop_sequences", "presencePenalty", "presence_penalty", "frequencyPenalty", "frequency_penalty")
	geminiResponseNames   = newFieldNames("candidates", "usageMetadata", "modelVersion", "responseId", "promptFeedback", "error")
	geminiCandidateNames  = newFieldNames("content", "finishReason", "index")
	geminiUsageNames      = newFieldNames("promptTokenCount", "candidatesTokenCount", "totalTokenCount", "cachedContentTokenCount", "thoughtsTokenCount", "toolUsePromptTokenCount")
	geminiFeedbackNames   = newFieldNames("blockReason")
)

func (b *geminiRequestBody) resetScan() { *b = geminiRequestBody{} }

func (b *geminiRequestBody) scanJSON(data []byte, strs *memo.Strings) bool {
	s := &jsonScan{b: data, memo: strs}
	return s.geminiRequest(b) && s.end()
}

func (s *jsonScan) geminiRequest(b *geminiRequestBody) bool {
	return s.fields(&geminiRequestNames, func(name string) bool {
		switch name {
		case "model":
			return s.tolerant(&b.Model)
		case "contents":
			return s.raw(&b.Contents)
		case "systemInstruction":
			return s.raw(&b.SystemInstruction)
		case "system_instruction":
			return s.raw(&b.SystemInstructionSnake)
		case "tools":
			return scanSlice(s, &b.Tools, s.geminiTool)
		case "toolConfig":
			return scanPointer(s, &b.ToolConfig, s.geminiToolConfig)
		case "tool_config":
			return scanPointer(s, &b.ToolConfigSnake, s.geminiToolConfig)
		case "generationConfig":
			return scanPointer(s, &b.GenerationConfig, s.geminiGenerationConfig)
		case "generation_config":
			return scanPointer(s, &b.GenerationConfigSnake, s.geminiGenerationConfig)
		case "cachedContent":
			return s.tolerant(&b.CachedContent)
		case "generateContentRequest":
			return scanPointer(s, &b.GenerateContentRequest, s.geminiRequest)
		}
		return false
	})
}

// geminiTool reads a tool as geminiTool.UnmarshalJSON does: an object's
// declarations, and the other member names sorted; any other value leaves
// the tool empty. A member named twice, or declarations in both
// spellings, decline (the method's map keeps the last, and joins the
// spellings in key order).
func (s *jsonScan) geminiTool(t *geminiTool) bool {
	if s.peek() != '{' {
		_, ok := s.value()
		return ok
	}
	declared := false
	ok := s.object(func(key []byte) bool {
		switch string(key) {
		case "functionDeclarations", "function_declarations":
			if declared {
				return false
			}
			declared = true
			return scanSlice(s, &t.FunctionDeclarations, s.geminiFunctionDecl)
		}
		for _, k := range t.Others {
			if k == string(key) {
				return false
			}
		}
		t.Others = append(t.Others, string(key))
		_, ok := s.value()
		return ok
	})
	if len(t.FunctionDeclarations) == 0 {
		// The method appends what it decoded to nil: an empty or null
		// list leaves nil.
		t.FunctionDeclarations = nil
	}
	slices.Sort(t.Others)
	return ok
}

func (s *jsonScan) geminiFunctionDecl(d *geminiFunctionDecl) bool {
	return s.fields(&geminiDeclNames, func(name string) bool {
		if name == "name" {
			return s.tolerant(&d.Name)
		}
		return s.tolerant(&d.Description)
	})
}

func (s *jsonScan) geminiToolConfig(c *geminiToolConfig) bool {
	return s.fields(&geminiToolConfigNames, func(name string) bool {
		if name == "functionCallingConfig" {
			return scanPointer(s, &c.FunctionCallingConfig, s.geminiCallingConfig)
		}
		return scanPointer(s, &c.FunctionCallingConfigSnake, s.geminiCallingConfig)
	})
}

func (s *jsonScan) geminiCallingConfig(c *geminiCallingConfig) bool {
	return s.fields(&geminiCallingNames, func(name string) bool {
		switch name {
		case "mode":
			return s.tolerant(&c.Mode)
		case "allowedFunctionNames":
			return scanSlice(s, &c.AllowedFunctionNames, s.tolerantStr)
		}
		return scanSlice(s, &c.AllowedFunctionNamesSnake, s.tolerantStr)
	})
}

// tolerantStr is tolerant for an element of a []jStr.
func (s *jsonScan) tolerantStr(v *jStr) bool { return s.tolerant(v) }

func (s *jsonScan) geminiGenerationConfig(c *geminiGenerationConfig) bool {
	return s.fields(&geminiGenConfigNames, func(name string) bool {
		switch name {
		case "temperature":
			return s.tolerant(&c.Temperature)
		case "topP":
			return s.tolerant(&c.TopP)
		case "top_p":
			return s.tolerant(&c.TopPSnake)
		case "maxOutputTokens":
			return s.tolerant(&c.MaxOutputTokens)
		case "max_output_tokens":
			return s.tolerant(&c.MaxOutputTokensSnake)
		case "stopSequences":
			return s.raw(&c.StopSequences)
		case "stop_sequences":
			return s.raw(&c.StopSequencesSnake)
		case "presencePenalty":
			return s.tolerant(&c.PresencePenalty)
		case "presence_penalty":
			return s.tolerant(&c.PresencePenaltySnake)
		case "frequencyPenalty":
			return s.tolerant(&c.FrequencyPenalty)
		case "frequency_penalty":
			return s.tolerant(&c.FrequencyPenaltySnake)
		}
		return false
	})
}

// geminiContentList is a request's "contents" array as a decode target
// of its own (decodeLoose picks scans by the target's type).
type geminiContentList []geminiContent

func (l *geminiContentList) resetScan() { *l = nil }

// scanJSON is scanSlice's read of the array, except that a content read
// into the place of one the list held before (a lent list, see
// geminiRequestRoom) keeps that content's array of parts, emptied.
func (l *geminiContentList) scanJSON(data []byte, strs *memo.Strings) bool {
	s := &jsonScan{b: data, memo: strs}
	if s.peek() != '[' {
		return scanSlice(s, (*[]geminiContent)(l), s.geminiContent) && s.end()
	}
	out := (*l)[:0]
	if out == nil {
		out = geminiContentList{}
	}
	ok := s.array(func() bool {
		return s.geminiContent(out.next())
	})
	*l = out
	return ok && s.end()
}

// next appends an empty content to l and returns it; the content keeps
// the array of parts of the one that held its place.
func (l *geminiContentList) next() *geminiContent {
	var parts []geminiPart
	if n := len(*l); n < cap(*l) {
		parts = (*l)[:n+1][n].Parts[:0]
	}
	*l = append(*l, geminiContent{Parts: parts})
	return &(*l)[len(*l)-1]
}

// one empties l but for one content, as next made it, and returns it.
func (l *geminiContentList) one() *geminiContent {
	*l = (*l)[:0]
	return l.next()
}

func (c *geminiContent) resetScan() { *c = geminiContent{} }

func (c *geminiContent) scanJSON(data []byte, strs *memo.Strings) bool {
	s := &jsonScan{b: data, memo: strs}
	return s.geminiContent(c) && s.end()
}

func (s *jsonScan) geminiContent(c *geminiContent) bool {
	return s.fields(&geminiContentNames, func(name string) bool {
		if name == "role" {
			return s.tolerant(&c.Role)
		}
		return scanSlice(s, &c.Parts, s.geminiPart)
	})
}

func (s *jsonScan) geminiPart(p *geminiPart) bool {
	return s.fields(&geminiPartNames, func(name string) bool {
		switch name {
		case "text":
			return s.tolerant(&p.Text)
		case "thought":
			return s.tolerant(&p.Thought)
		case "inlineData":
			return scanPointer(s, &p.InlineData, s.geminiBlob)
		case "inline_data":
			return scanPointer(s, &p.InlineDataSnake, s.geminiBlob)
		case "fileData":
			return scanPointer(s, &p.FileData, s.geminiBlob)
		case "file_data":
			return scanPointer(s, &p.FileDataSnake, s.geminiBlob)
		case "functionCall":
			return scanPointer(s, &p.FunctionCall, s.geminiFunctionCall)
		case "function_call":
			return scanPointer(s, &p.FunctionCallSnake, s.geminiFunctionCall)
		case "functionResponse":
			return scanPointer(s, &p.FunctionResponse, s.geminiFunctionCall)
		case "function_response":
			return scanPointer(s, &p.FunctionResponseSnake, s.geminiFunctionCall)
		}
		return false
	})
}

func (s *jsonScan) geminiBlob(b *geminiBlob) bool {
	return s.fields(&geminiBlobNames, func(name string) bool {
		switch name {
		case "mimeType":
			return s.tolerant(&b.MimeType)
		case "mime_type":
			return s.tolerant(&b.MimeTypeSnake)
		case "data":
			return s.tolerant(&b.Data)
		case "fileUri":
			return s.tolerant(&b.FileURI)
		case "file_uri":
			return s.tolerant(&b.FileURISnake)
		}
		return false
	})
}

func (s *jsonScan) geminiFunctionCall(f *geminiFunctionCall) bool {
	return s.fields(&geminiCallNames, func(name string) bool {
		switch name {
		case "id":
			return s.tolerant(&f.ID)
		case "name":
			return s.tolerant(&f.Name)
		case "args":
			return s.raw(&f.Args)
		case "response":
			return s.raw(&f.Response)
		}
		return false
	})
}

// resetScan empties the body as reset does (keeping the candidates array).
func (b *geminiResponseBody) resetScan() { b.reset() }

func (b *geminiResponseBody) scanJSON(data []byte, strs *memo.Strings) bool {
	s := &jsonScan{b: data, memo: strs}
	return s.fields(&geminiResponseNames, func(name string) bool {
		switch name {
		case "candidates":
			return scanSlice(s, &b.Candidates, s.geminiCandidate)
		case "usageMetadata":
			return scanPointer(s, &b.UsageMetadata, s.geminiUsage)
		case "modelVersion":
			return s.tolerant(&b.ModelVersion)
		case "responseId":
			return s.tolerant(&b.ResponseID)
		case "promptFeedback":
			return scanPointer(s, &b.PromptFeedback, func(f *geminiPromptFeedback) bool {
				return s.fields(&geminiFeedbackNames, func(string) bool { return s.tolerant(&f.BlockReason) })
			})
		case "error":
			return s.raw(&b.Error)
		}
		return false
	}) && s.end()
}

func (s *jsonScan) geminiCandidate(c *geminiCandidate) bool {
	return s.fields(&geminiCandidateNames, func(name string) bool {
		switch name {
		case "content":
			return scanPointer(s, &c.Content, s.geminiContent)
		case "finishReason":
			return s.tolerant(&c.FinishReason)
		}
		return s.tolerant(&c.Index)
	})
}

func (s *jsonScan) geminiUsage(u *geminiUsageBody) bool {
	return s.fields(&geminiUsageNames, func(name string) bool {
		switch name {
		case "promptTokenCount":
			return s.tolerant(&u.PromptTokenCount)
		case "candidatesTokenCount":
			return s.tolerant(&u.CandidatesTokenCount)
		case "totalTokenCount":
			return s.tolerant(&u.TotalTokenCount)
		case "cachedContentTokenCount":
			return s.tolerant(&u.CachedContentTokenCount)
		case "thoughtsTokenCount":
			return s.tolerant(&u.ThoughtsTokenCount)
		}
		return s.tolerant(&u.ToolUsePromptTokenCount)
	})
}
