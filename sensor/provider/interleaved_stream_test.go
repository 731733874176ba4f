package provider

import (
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// TestInterleavedStreams feeds streams whose choices, tool calls and
// content blocks take turns, so that a later delta of an earlier one
// arrives after its accumulator array grew (a strings.Builder copied by
// the growth panicked then): no panic, and every text reassembled.
func TestInterleavedStreams(t *testing.T) {
	chat := newOpenAIChatStream()
	for _, ev := range []string{
		`{"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":"a"}}]}`,
		`{"id":"c","choices":[{"index":1,"delta":{"content":"x"}}]}`,
		`{"id":"c","choices":[{"index":2,"delta":{"content":"p"}}]}`,
		`{"id":"c","choices":[{"index":0,"delta":{"content":"b","reasoning_content":"r"}}]}`,
		`{"id":"c","choices":[{"index":1,"delta":{"tool_calls":[{"index":0,"id":"t0","function":{"name":"f","arguments":"{\"a\""}}]}}]}`,
		`{"id":"c","choices":[{"index":1,"delta":{"tool_calls":[{"index":1,"id":"t1","function":{"name":"g","arguments":"{"}}]}}]}`,
		`{"id":"c","choices":[{"index":1,"delta":{"tool_calls":[{"index":2,"id":"t2","function":{"name":"h","arguments":"{"}}]}}]}`,
		`{"id":"c","choices":[{"index":1,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]}}]}`,
		`{"id":"c","choices":[{"index":1,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"}"}}]}}]}`,
		`{"id":"c","choices":[{"index":0,"delta":{"content":"c"}}]}`,
		`[DONE]`,
	} {
		chat.add([]byte(ev), time.Time{})
	}
	resp := &oisp.AIResponse{}
	chat.fillChoices(resp, nil)
	if len(resp.Choices) != 3 || resp.Choices[0].Message.Content != "abc" || resp.Choices[1].Message.Content != "x" || resp.Choices[2].Message.Content != "p" {
		t.Errorf("choices %+v", resp.Choices)
	}
	if len(resp.ToolCalls) != 3 || resp.ToolCalls[0].Arguments != `{"a":1}` || resp.ToolCalls[1].Arguments != "{}" || resp.ToolCalls[2].Arguments != "{" {
		t.Errorf("tool calls %+v", resp.ToolCalls)
	}
	if resp.Thinking == nil || resp.Thinking.Content != "r" {
		t.Errorf("thinking %+v", resp.Thinking)
	}

	msgs := newAnthropicStream()
	for _, ev := range [][2]string{
		{"message_start", `{"type":"message_start","message":{"id":"m","model":"claude","usage":{"input_tokens":3}}}`},
		{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}`},
		{"content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}`},
		{"content_block_start", `{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"t","name":"f","input":{}}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hm"}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"he"}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"llo"}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"1}"}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"m"}}`},
		{"message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":5}}`},
		{"message_stop", `{"type":"message_stop"}`},
	} {
		msgs.add(ev[0], []byte(ev[1]), time.Time{})
	}
	res, aresp := &Result{Request: &oisp.AIRequest{}}, &oisp.AIResponse{}
	msgs.finish(res, aresp)
	if len(aresp.Choices) != 1 || aresp.Choices[0].Message.Content != "hello" || aresp.Thinking == nil || aresp.Thinking.Content != "hmm" ||
		len(aresp.ToolCalls) != 1 || aresp.ToolCalls[0].Arguments != `{"a":1}` {
		t.Errorf("anthropic response %+v, thinking %+v, calls %+v", aresp.Choices, aresp.Thinking, aresp.ToolCalls)
	}
}
