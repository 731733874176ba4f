package provider

import (
	"bytes"
	"strings"
	"testing"

	awsstream "github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/oisp/oisp-sensor/sensor/stats"
	"github.com/oisp/oisp-sensor/sensor/stream/eventstream"
)

// Recorded Bedrock exchanges (testdata/bedrock/README.md lists the
// sources): Converse and ConverseStream, InvokeModel per model family,
// eventstream bodies with base64 chunks, error replies.
func TestBedrockRecorded(t *testing.T) {
	const nova = "us.amazon.nova-micro-v1:0"
	runWants(t, []recWant{
		{ // ConverseStream over eventstream
			file: "bedrock/test_bedrock_model_stream.yaml", api: apiBedrockConverse,
			providerName: "aws_bedrock", model: nova, answeredModel: nova,
			streaming: true, status: 200, finish: "stop",
			prompt: iptr(13), completion: iptr(82), total: iptr(95),
			messages: 2, systemPrompt: true, ttft: true, cost: "priced",
		},
		{ // streamed tool use: contentBlockStart toolUse + input deltas
			file: "bedrock/test_bedrock_model_iter_stream.yaml", index: 0, api: apiBedrockConverse,
			providerName: "aws_bedrock", model: nova, answeredModel: nova,
			streaming: true, status: 200, finish: "tool_calls",
			prompt: iptr(471), completion: iptr(91), total: iptr(562), tools: []string{"get_temperature"},
			messages: 2, systemPrompt: true, ttft: true,
		},
		{ // the toolResult goes back
			file: "bedrock/test_bedrock_model_iter_stream.yaml", index: 1, api: apiBedrockConverse,
			providerName: "aws_bedrock", model: nova, answeredModel: nova,
			streaming: true, status: 200, finish: "stop",
			prompt: iptr(577), completion: iptr(18), total: iptr(595),
			toolResults: 1, messages: 4, systemPrompt: true, ttft: true,
		},
		{ // InvokeModelWithResponseStream, Anthropic events in base64 chunks
			file: "bedrock/test_anthropic_3_completion_streaming.yaml", api: apiBedrockInvoke,
			providerName: "aws_bedrock", model: "anthropic.claude-3-sonnet-20240229-v1:0", answeredModel: "claude-3-sonnet-20240229",
			streaming: true, status: 200, finish: "stop",
			prompt: iptr(16), completion: iptr(21), total: iptr(37),
			messages: 1, ttft: true, cost: "priced", // priced as the answered claude-3-sonnet-20240229
		},
		{ // Titan stream: input count in the first chunk, output in the last
			file: "bedrock/test_titan_invoke_stream.yaml", api: apiBedrockInvoke,
			providerName: "aws_bedrock", model: "amazon.titan-text-express-v1", answeredModel: "amazon.titan-text-express-v1",
			streaming: true, status: 200, finish: "stop",
			prompt: iptr(28), completion: iptr(188), total: iptr(216),
			messages: 1, ttft: true,
		},
		{ // a guardrail blocked the input: one chunk, no completion reason
			file: "bedrock/test_guardrail_invoke_stream.yaml", api: apiBedrockInvoke,
			providerName: "aws_bedrock", model: "amazon.titan-text-express-v1", answeredModel: "amazon.titan-text-express-v1",
			streaming: true, status: 200,
			prompt: iptr(6), completion: iptr(3), total: iptr(9),
			messages: 1, ttft: true,
		},
		{ // Llama: prompt_token_count / generation_token_count
			file: "bedrock/test_meta_llama2_completion_string_content.yaml", api: apiBedrockInvoke,
			providerName: "aws_bedrock", model: "meta.llama2-13b-chat-v1", answeredModel: "meta.llama2-13b-chat-v1",
			status: 200, finish: "length",
			prompt: iptr(158), completion: iptr(128), total: iptr(286),
			messages: 1, cost: "unknown", // no price for Llama 2 on Bedrock
		},
		{ // Cohere Command: no counts in the body, Bedrock's headers give them
			file: "bedrock/test_cohere_completion.yaml", api: apiBedrockInvoke,
			providerName: "aws_bedrock", model: "cohere.command-text-v14", answeredModel: "cohere.command-text-v14",
			status: 200, finish: "stop",
			prompt: iptr(9), completion: iptr(112), total: iptr(121),
			messages: 1,
		},
		{ // AI21 Jurassic: counts from the token lists
			file: "bedrock/test_ai21_j2_completion_string_content.yaml", api: apiBedrockInvoke,
			providerName: "aws_bedrock", model: "ai21.j2-mid-v1", answeredModel: "ai21.j2-mid-v1",
			status: 200, finish: "stop",
			prompt: iptr(26), completion: iptr(42), total: iptr(68),
			messages: 1,
		},
		{ // 400 without an error-type header
			file: "bedrock/test_bedrock_error.yaml", api: apiBedrockConverse,
			providerName: "aws_bedrock", model: "us.does-not-exist-model-v1:0", answeredModel: "us.does-not-exist-model-v1:0",
			status: 400, failed: true, errType: "http_error", messages: 1,
		},
		{ // a stream request answered with a JSON 400, not an eventstream
			file: "bedrock/test_bedrock_streaming_error.yaml", api: apiBedrockConverse,
			providerName: "aws_bedrock", model: "us.does-not-exist-model-v1:0", answeredModel: "us.does-not-exist-model-v1:0",
			streaming: true, status: 400, failed: true, errType: "http_error", messages: 1,
		},
		{ // 403 with x-amzn-ErrorType
			file: "bedrock/TestAmazonNova.httprr", api: apiBedrockInvoke,
			providerName: "aws_bedrock", model: nova, answeredModel: nova,
			status: 403, failed: true, errType: "AccessDeniedException", messages: 2, systemPrompt: true,
		},
	})
}

func TestBedrockPath(t *testing.T) {
	for _, c := range []struct {
		path, model, op string
		stream, ok      bool
	}{
		{"/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "converse", false, true},
		{"/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fotnfa2ysixqd/invoke", "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/otnfa2ysixqd", "invoke", false, true},
		{"/model/amazon.titan-text-express-v1/invoke-with-response-stream", "amazon.titan-text-express-v1", "invoke-with-response-stream", true, true},
		{"/model/x/converse-stream", "x", "converse-stream", true, true},
		{"/model//converse", "", "", false, false},
		{"/model/x/apply-guardrail", "", "", false, false},
		{"/guardrail/x/version/1/apply", "", "", false, false},
	} {
		p, ok := parseBedrockPath(c.path)
		if ok != c.ok || p.Model != c.model || p.Op != c.op || p.Stream != c.stream {
			t.Errorf("parseBedrockPath(%q) = %+v, %v; want model %q op %q stream %v ok %v", c.path, p, ok, c.model, c.op, c.stream, c.ok)
		}
	}
	for model, vendor := range map[string]string{
		"us.anthropic.claude-3-7-sonnet-20250219-v1:0": "anthropic",
		"anthropic.claude-v2":                          "anthropic",
		"arn:aws:bedrock:us-east-1:012345678901:inference-profile/us.anthropic.claude-3-7-sonnet": "anthropic",
		"arn:aws:sagemaker:us-east-1:767398002385:endpoint/endpoint-quick-start-idr7y":            "",
		"meta.llama3-70b-instruct-v1:0":  "meta",
		"global.amazon.nova-2-lite-v1:0": "amazon",
	} {
		if got := bedrockVendor(model); got != vendor {
			t.Errorf("bedrockVendor(%q) = %q; want %q", model, got, vendor)
		}
	}
}

func FuzzBedrock(f *testing.F) {
	for _, p := range []string{"bedrock/test_bedrock_model_iter_stream.yaml", "bedrock/test_anthropic_3_completion_streaming.yaml", "bedrock/test_titan_invoke_stream.yaml", "bedrock/test_ai21_j2_completion_string_content.yaml", "bedrock/test_bedrock_error.yaml"} {
		moreSeedBodies(f, "testdata/"+p, func(req, resp []byte) { f.Add(req, resp, uint8(0)) })
	}
	reg := moreRegistry(f)
	urls := []string{
		"https://bedrock-runtime.us-east-1.amazonaws.com/model/us.amazon.nova-micro-v1%3A0/converse-stream",
		"https://bedrock-runtime.us-east-1.amazonaws.com/model/us.amazon.nova-micro-v1%3A0/converse",
		"https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-sonnet-20240229-v1%3A0/invoke-with-response-stream",
		"https://bedrock-runtime.us-east-1.amazonaws.com/model/amazon.titan-text-express-v1/invoke",
		"https://bedrock-runtime.us-east-1.amazonaws.com/model/cohere.embed-v4%3A0/invoke",
		"https://bedrock-runtime.us-east-1.amazonaws.com/model/meta.llama3-70b-instruct-v1%3A0/invoke-with-response-stream",
		"https://bedrock-runtime.us-east-1.amazonaws.com/model/arn%3Aaws%3Asagemaker%3Aus-east-1%3A1%3Aendpoint%2Fe/invoke",
		"https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-sonnet-4-20250514-v1%3A0/count-tokens",
	}
	// CountTokens bodies, as pydantic-ai's recordings send them.
	f.Add([]byte(`{"input":{"converse":{"messages":[{"role":"user","content":[{"text":"hi"}]}],"system":[]}}}`), []byte(`{"inputTokens":8}`), uint8(7))
	f.Add([]byte(`{"input":{"invokeModel":{"body":"eyJtZXNzYWdlcyI6W3sicm9sZSI6InVzZXIiLCJjb250ZW50IjoiaGkifV0sIm1heF90b2tlbnMiOjF9"}}}`), []byte(`{"inputTokens":8}`), uint8(7))
	f.Fuzz(func(t *testing.T, req, resp []byte, variant uint8) {
		fuzzDecodeVariant(t, reg, urls, "application/vnd.amazon.eventstream", req, resp, variant)
	})
}

// A stream that ends in an exception frame (HTTP 200) is a failure in the
// body; a frame with a bad CRC is skipped and counted, the rest decodes.
func TestBedrockStreamExceptionAndBadCRC(t *testing.T) {
	reg := moreRegistry(t)
	rec := moreRecording(t, "testdata/bedrock/test_bedrock_model_stream.yaml")
	in := rec.Interactions[0]
	x := moreExchange(t, in)
	frames, err := eventstream.DecodeAll(x.Response.Body.Data, nil, eventstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var exc bytes.Buffer
	if err := awsstream.NewEncoder().Encode(&exc, awsstream.Message{
		Headers: awsstream.Headers{
			{Name: ":message-type", Value: awsstream.StringValue("exception")},
			{Name: ":exception-type", Value: awsstream.StringValue("modelStreamErrorException")},
			{Name: ":content-type", Value: awsstream.StringValue("application/json")},
		},
		Payload: []byte(`{"message":"The model stream failed","originalStatusCode":500}`),
	}); err != nil {
		t.Fatal(err)
	}
	cut := append(bytes.Clone(x.Response.Body.Data[:frames[10].End]), exc.Bytes()...)
	in.Response.Body = cut
	var counters stats.Counters
	res, err := bedrockAPI{converse: true}.Decode(Target{ProviderID: "aws_bedrock", Host: "bedrock-runtime.us-east-1.amazonaws.com", Known: true}, moreExchange(t, in), Env{Registry: reg, Stats: &counters})
	if err != nil {
		t.Fatal(err)
	}
	r := res.Response
	if r.Success == nil || *r.Success || r.Error == nil || r.Error.Type != "modelStreamErrorException" ||
		r.Error.Message != "The model stream failed" || r.FinishReason != "error" || r.StatusCode != 200 {
		t.Errorf("exception: success %v error %+v finish %q", r.Success, r.Error, r.FinishReason)
	}

	// Corrupt one payload byte of frame 3 (a text delta).
	bad := bytes.Clone(x.Response.Body.Data)
	bad[frames[3].End-10] ^= 0x01
	in.Response.Body = bad
	res, err = bedrockAPI{converse: true}.Decode(Target{ProviderID: "aws_bedrock", Known: true}, moreExchange(t, in), Env{Registry: reg, Stats: &counters})
	if err != nil {
		t.Fatal(err)
	}
	if counters.Get(eventstream.TokenBadCRC) != 1 || counters.Get(eventstream.TokenDroppedBytes) != frames[3].End-frames[3].Start {
		t.Errorf("counters %v", counters.Snapshot())
	}
	r = res.Response
	if r.Usage == nil || *r.Usage.PromptTokens != 13 || r.FinishReason != "stop" || r.Error != nil {
		t.Errorf("after a bad frame: usage %+v finish %q error %+v", r.Usage, r.FinishReason, r.Error)
	}
	full := moreExchange(t, rec.Interactions[0])
	resFull, _ := bedrockAPI{converse: true}.Decode(Target{ProviderID: "aws_bedrock", Known: true}, full, Env{Registry: reg, Stats: stats.Discard{}})
	if got, whole := r.Choices[0].Message.Content, resFull.Response.Choices[0].Message.Content; len(got) >= len(whole) || !strings.HasPrefix(whole, got[:5]) {
		t.Errorf("the skipped delta should be missing: %q vs %q", got, whole)
	}
}
