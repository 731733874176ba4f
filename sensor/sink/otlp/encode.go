package otlp

import (
	"bytes"
	"encoding/hex"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// encoder turns an OISP event into the wire bytes of one OTLP LogRecord.
// It holds only settings fixed at construction, so it is safe for
// concurrent use.
//
// It writes the protobuf wire format directly rather than building the
// generated LogRecord and marshalling it: an event has some forty
// attributes, each a KeyValue and an AnyValue to allocate, which cost
// more than the encoding itself. The tests decode every record with the
// official OTLP types.
type encoder struct {
	// legacySystem also writes gen_ai.system beside gen_ai.provider.name,
	// for backends that still read the pre-1.37 name.
	legacySystem bool
	// resourceHost is the host.name of the resource: an event from another
	// host carries its own host.name attribute.
	resourceHost string
}

// LogRecord field numbers.
const (
	fieldTime           = 1
	fieldSeverityNumber = 2
	fieldSeverityText   = 3
	fieldBody           = 5
	fieldAttributes     = 6
	fieldTraceID        = 9
	fieldSpanID         = 10
	fieldObservedTime   = 11
	fieldEventName      = 12
)

// encode appends the serialised LogRecord for ev to dst; body is scratch
// space for the data's JSON, returned for reuse. It reads ev only while
// it runs: the bytes share no memory with the event.
//
// ids, when not nil, are the trace and span ids of the GenAI span the
// event belongs to; else the record carries the event's trace context.
func (e *encoder) encode(dst, body []byte, ev *oisp.Event, observed time.Time, ids *spanIDs) (out, scratch []byte, err error) {
	if ev.Data != nil {
		w := bytes.NewBuffer(body[:0])
		enc := json.NewEncoder(w)
		if err := enc.Encode(ev.Data); err != nil {
			return dst, body, err
		}
		body = bytes.TrimSuffix(w.Bytes(), []byte("\n"))
		// AnyValue{string_value: body}
		dst = protowire.AppendTag(dst, fieldBody, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(1+protowire.SizeBytes(len(body))))
		dst = protowire.AppendTag(dst, 1, protowire.BytesType)
		dst = protowire.AppendBytes(dst, body)
	}
	dst = appendString(dst, fieldEventName, ev.EventType)
	if ts, err := time.Parse(time.RFC3339Nano, ev.TS); err == nil && ts.UnixNano() > 0 {
		dst = protowire.AppendTag(dst, fieldTime, protowire.Fixed64Type)
		dst = protowire.AppendFixed64(dst, uint64(ts.UnixNano()))
	}
	dst = protowire.AppendTag(dst, fieldObservedTime, protowire.Fixed64Type)
	dst = protowire.AppendFixed64(dst, uint64(observed.UnixNano()))
	if ids != nil {
		dst = protowire.AppendTag(dst, fieldTraceID, protowire.BytesType)
		dst = protowire.AppendBytes(dst, ids.trace[:])
		dst = protowire.AppendTag(dst, fieldSpanID, protowire.BytesType)
		dst = protowire.AppendBytes(dst, ids.span[:])
	} else if tc := ev.TraceContext; tc != nil {
		dst = appendHexID(dst, fieldTraceID, tc.TraceID, 16)
		dst = appendHexID(dst, fieldSpanID, tc.SpanID, 8)
	}
	a := attrs{b: dst, field: fieldAttributes}
	e.envelope(&a, ev)
	failed := e.data(&a, ev)
	dst = a.b
	severity, text := logspb.SeverityNumber_SEVERITY_NUMBER_INFO, "INFO"
	if failed {
		severity, text = logspb.SeverityNumber_SEVERITY_NUMBER_ERROR, "ERROR"
	}
	dst = protowire.AppendTag(dst, fieldSeverityNumber, protowire.VarintType)
	dst = protowire.AppendVarint(dst, uint64(severity))
	dst = appendString(dst, fieldSeverityText, text)
	return dst, body, nil
}

// appendString appends a string field, leaving out an empty one as
// proto3 does.
func appendString(b []byte, field protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	s = validUTF8(s)
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// appendHexID appends a trace or span id given in lowercase hex, if it is
// one of n bytes.
func appendHexID(b []byte, field protowire.Number, id string, n int) []byte {
	var raw [16]byte
	if len(id) != 2*n {
		return b
	}
	if _, err := hex.Decode(raw[:n], []byte(id)); err != nil {
		return b
	}
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendBytes(b, raw[:n])
}

// envelope adds the attributes every event has: the OISP envelope, the
// process and the host where it differs from the resource.
func (e *encoder) envelope(a *attrs, ev *oisp.Event) {
	a.str("oisp.version", ev.OISPVersion)
	a.str("oisp.event_id", ev.EventID)
	if ev.TSMono != 0 {
		a.int("oisp.ts_mono", ev.TSMono)
	}
	a.str("oisp.source.collector", ev.Source.Collector)
	a.str("oisp.source.collector_version", ev.Source.CollectorVersion)
	a.str("oisp.source.capture_method", ev.Source.CaptureMethod)
	a.str("oisp.source.capture_point", ev.Source.CapturePoint)
	a.str("oisp.source.sensor_host", ev.Source.SensorHost)
	if c := ev.Confidence; c != nil {
		a.str("oisp.confidence.level", c.Level)
		a.str("oisp.confidence.completeness", c.Completeness)
		a.strs("oisp.confidence.reasons", c.Reasons)
		a.strs("oisp.confidence.missing", c.Missing)
		a.strs("oisp.confidence.limitations", c.Limitations)
		a.str("oisp.confidence.process_attribution", c.ProcessAttribution)
		a.str("oisp.confidence.content_source", c.ContentSource)
		a.str("oisp.confidence.ai_detection_method", c.AIDetectionMethod)
		if c.RedactionApplied != nil {
			a.bool("oisp.confidence.redaction_applied", *c.RedactionApplied)
		}
		a.str("oisp.confidence.redaction_profile", c.RedactionProfile)
	}
	if h := ev.Host; h != nil {
		if h.Hostname != e.resourceHost {
			a.str("host.name", h.Hostname)
		}
		a.str("host.id", h.DeviceID)
	}
	if ac := ev.Actor; ac != nil {
		if ac.UID != nil {
			a.int("process.user.id", int64(*ac.UID))
		}
		a.str("process.user.name", ac.User)
	}
	if p := ev.Process; p != nil {
		exe, args, cwd := p.Exe, p.CmdlineArgs, p.Cwd
		// process.exec's data names the new image: it wins over the
		// envelope's process, which may still describe the caller.
		if x, ok := ev.Data.(*oisp.ProcessExec); ok {
			exe, args, cwd = nonEmpty(x.Exe, exe), x.Args, nonEmpty(x.Cwd, cwd)
			if len(args) == 0 {
				args = p.CmdlineArgs
			}
		}
		if p.PID != 0 {
			a.int("process.pid", int64(p.PID))
		}
		if p.PPID != 0 {
			a.int("process.parent_pid", int64(p.PPID))
		}
		a.str("process.executable.path", exe)
		a.str("process.executable.name", p.Name)
		a.str("process.command_line", p.Cmdline)
		a.strs("process.command_args", args)
		a.str("process.working_directory", cwd)
		a.str("container.id", p.ContainerID)
		a.str("oisp.process.bundle_id", p.BundleID)
		a.str("oisp.process.cgroup", p.Cgroup)
	}
	if app := ev.App; app != nil {
		a.str("oisp.app.id", app.AppID)
		a.str("oisp.app.name", app.Name)
		a.str("oisp.app.vendor", app.Vendor)
		a.str("oisp.app.bundle_id", app.BundleID)
		a.str("oisp.app.category", app.Category)
		a.str("oisp.app.tier", app.Tier)
		a.str("oisp.app.type", app.Type)
		if app.IsAIApp != nil {
			a.bool("oisp.app.is_ai_app", *app.IsAIApp)
		}
	}
	if ev.Attrs != nil {
		a.str("oisp.flow.id", ev.Attrs.FlowID)
	}
	if len(ev.RelatedEvents) > 0 {
		// "relationship:event_id", so that one array attribute keeps both.
		rel := make([]string, len(ev.RelatedEvents))
		for i, r := range ev.RelatedEvents {
			rel[i] = r.Relationship + ":" + r.EventID
		}
		a.strs("oisp.related_events", rel)
	}
	if len(ev.Ext) > 0 {
		if b, err := json.Marshal(ev.Ext); err == nil {
			a.str("oisp.ext", string(b))
		}
	}
}

// data adds the attributes of the event's data: the GenAI semantic
// conventions for ai.* and agent.* events, process, network and file
// attributes for host events. It reports whether the event is a failure
// (its record then has severity ERROR).
func (e *encoder) data(a *attrs, ev *oisp.Event) (failed bool) {
	switch d := ev.Data.(type) {
	case *oisp.AIRequest:
		a.str("oisp.request_id", d.RequestID)
		e.operation(a, d.RequestType, d.Provider)
		e.provider(a, d.Provider)
		if d.Model != nil {
			a.str("gen_ai.request.model", d.Model.ID)
		}
		// The sensor's conversation id is its own grouping (a hash of
		// process, provider, system prompt and first user message), not
		// an id the provider or client gave: the conventions reserve
		// gen_ai.conversation.id for those.
		a.str("oisp.conversation_id", d.ConversationID)
		if d.Streaming != nil {
			a.bool("gen_ai.request.stream", *d.Streaming)
		}
		if p := d.Parameters; p != nil {
			a.floatp("gen_ai.request.temperature", p.Temperature)
			a.floatp("gen_ai.request.top_p", p.TopP)
			if p.MaxTokens != nil {
				a.int("gen_ai.request.max_tokens", int64(*p.MaxTokens))
			}
			a.floatp("gen_ai.request.frequency_penalty", p.FrequencyPenalty)
			a.floatp("gen_ai.request.presence_penalty", p.PresencePenalty)
			a.strs("gen_ai.request.stop_sequences", p.Stop)
		}
	case *oisp.AIResponse:
		a.str("oisp.request_id", d.RequestID)
		e.provider(a, d.Provider)
		if d.Model != nil {
			a.str("gen_ai.response.model", d.Model.ID)
			a.str("gen_ai.request.model", d.Model.Requested)
		}
		a.str("gen_ai.response.id", d.ProviderRequestID)
		a.str("oisp.conversation_id", d.ConversationID)
		a.strs("gen_ai.response.finish_reasons", finishReasons(d))
		usage(a, ev.Data, d.Usage)
		if d.TimeToFirstTokenMS != nil {
			a.float("gen_ai.response.time_to_first_chunk", float64(*d.TimeToFirstTokenMS)/1000)
		}
		if d.Streaming != nil {
			a.bool("gen_ai.request.stream", *d.Streaming)
		}
		failed = outcome(a, d.StatusCode, d.Success, d.Error)
	case *oisp.AIEmbedding:
		a.str("oisp.request_id", d.RequestID)
		e.operation(a, oisp.RequestEmbedding, d.Provider)
		e.provider(a, d.Provider)
		if d.Model != nil {
			a.str("gen_ai.request.model", d.Model.ID)
		}
		usage(a, ev.Data, d.Usage)
		failed = outcome(a, d.StatusCode, d.Success, d.Error)
	case *oisp.ToolCallEvent:
		a.str("gen_ai.operation.name", "execute_tool")
		a.str("gen_ai.tool.name", d.Tool.Name)
		a.str("gen_ai.tool.call.id", d.CallID)
		a.str("gen_ai.tool.type", toolType(d.Tool.Type))
		a.str("gen_ai.tool.description", d.Tool.Description)
		a.str("oisp.request_id", d.RequestID)
	case *oisp.ToolResultEvent:
		a.str("gen_ai.operation.name", "execute_tool")
		if d.Tool != nil {
			a.str("gen_ai.tool.name", d.Tool.Name)
			a.str("gen_ai.tool.type", toolType(d.Tool.Type))
		}
		a.str("gen_ai.tool.call.id", d.CallID)
		a.str("oisp.request_id", d.RequestID)
		failed = outcome(a, 0, d.Success, d.Error)
	case *oisp.ProcessExec:
		if ev.Process == nil { // else envelope wrote them
			a.str("process.executable.path", d.Exe)
			a.strs("process.command_args", d.Args)
			a.str("process.working_directory", d.Cwd)
		}
	case *oisp.ProcessExit:
		a.int("process.exit.code", int64(d.ExitCode))
		if d.Signal != 0 {
			a.int("oisp.process.exit.signal", int64(d.Signal))
		}
	case *oisp.ProcessFork:
		a.int("oisp.process.child_pid", int64(d.ChildPID))
	case *oisp.NetworkConnect:
		a.str("network.peer.address", d.Dest.IP)
		a.str("server.address", d.Dest.Domain)
		if d.Dest.Port != nil {
			a.int("network.peer.port", int64(*d.Dest.Port))
		}
		a.str("network.transport", d.Protocol)
		if d.Success != nil && !*d.Success {
			a.str("error.type", nonEmpty(d.Error, "connect_failed"))
			failed = true
		}
	case *oisp.FileOpen:
		a.str("file.path", d.Path)
	case *oisp.FileWrite:
		a.str("file.path", d.Path)
	}
	return failed
}

// operation adds gen_ai.operation.name for an OISP request type.
func (e *encoder) operation(a *attrs, requestType string, p *oisp.Provider) {
	a.str("gen_ai.operation.name", operationName(requestType, p))
}

// operationName is the gen_ai.operation.name of an OISP request type.
func operationName(requestType string, p *oisp.Provider) string {
	var op string
	switch requestType {
	case oisp.RequestChat:
		op = "chat"
		// Gemini's API is generateContent, which the conventions name apart.
		if name := providerName(p); name == "gcp.gemini" || name == "gcp.vertex_ai" {
			op = "generate_content"
		}
	case oisp.RequestCompletion:
		op = "text_completion"
	case oisp.RequestEmbedding:
		op = "embeddings"
	default:
		// The conventions require an operation name and name none for
		// images, audio, moderation or other calls (a compaction): the
		// OISP request type stands in, as they advise for names of
		// their own.
		op = requestType
	}
	return op
}

// provider adds gen_ai.provider.name (and gen_ai.system when asked) and
// the server the request went to.
func (e *encoder) provider(a *attrs, p *oisp.Provider) {
	if p == nil {
		return
	}
	name := providerName(p)
	a.str("gen_ai.provider.name", name)
	if e.legacySystem {
		a.str("gen_ai.system", name)
	}
	host, port := serverOf(p)
	a.str("server.address", host)
	if port != 0 {
		a.int("server.port", int64(port))
	}
}

// providerName maps OISP's provider enum (and the sensor's finer provider
// id) onto the conventions' gen_ai.provider.name values; providers the
// conventions do not list keep the sensor's id.
func providerName(p *oisp.Provider) string {
	if p == nil {
		return ""
	}
	id := p.ID
	if id == "" {
		id = p.Name
	}
	switch id {
	case "google_vertex", "vertex", "vertex_ai":
		return "gcp.vertex_ai"
	case "google", "gemini":
		if strings.Contains(p.Host, "aiplatform") || strings.Contains(p.Endpoint, "aiplatform") {
			return "gcp.vertex_ai"
		}
		return "gcp.gemini"
	case "aws_bedrock", "bedrock":
		return "aws.bedrock"
	case "azure_openai", "azure":
		return "azure.ai.openai"
	case "azure_ai":
		return "azure.ai.inference"
	case "mistral":
		return "mistral_ai"
	case "xai":
		return "x_ai"
	case "moonshot":
		return "moonshot_ai"
	case "watsonx", "ibm":
		return "ibm.watsonx.ai"
	case "other", "":
		return p.Name
	}
	return id
}

// serverOf returns the host and port the provider was reached at.
func serverOf(p *oisp.Provider) (string, int) {
	if p.Endpoint != "" {
		if u, err := url.Parse(p.Endpoint); err == nil && u.Host != "" {
			port := 0
			if ps := u.Port(); ps != "" {
				// Not on "": Atoi's error would cost an allocation per event.
				port, _ = strconv.Atoi(ps)
			}
			if port == 0 {
				switch u.Scheme {
				case "https", "wss":
					port = 443
				case "http", "ws":
					port = 80
				}
			}
			return u.Hostname(), port
		}
	}
	if p.Host != "" {
		if h, ps, err := net.SplitHostPort(p.Host); err == nil {
			port, _ := strconv.Atoi(ps)
			return h, port
		}
		return p.Host, 0
	}
	return "", 0
}

// finishReasons returns one finish reason per choice, else the response's.
func finishReasons(d *oisp.AIResponse) []string {
	var out []string
	for _, c := range d.Choices {
		if c.FinishReason != "" {
			out = append(out, c.FinishReason)
		}
	}
	if len(out) == 0 && d.FinishReason != "" {
		out = []string{d.FinishReason}
	}
	return out
}

// usage adds the token counts of data, whose usage is u.
func usage(a *attrs, data any, u *oisp.Usage) {
	in, out := tokenUsage(data)
	a.intp("gen_ai.usage.input_tokens", in)
	a.intp("gen_ai.usage.output_tokens", out)
	if u == nil {
		return
	}
	a.intp("gen_ai.usage.cache_read.input_tokens", u.CachedTokens)
	a.intp("gen_ai.usage.cache_creation.input_tokens", u.CacheCreationTokens)
	a.intp("gen_ai.usage.reasoning.output_tokens", u.ReasoningTokens)
}

// tokenUsage returns the input and output tokens of an AI call's
// response data (nil when not known), as gen_ai.usage.input_tokens and
// output_tokens report them. OISP's prompt_tokens already includes cache
// reads and writes, as input_tokens must; an embedding without usage
// gives its total, all of it input.
func tokenUsage(data any) (input, output *int) {
	switch d := data.(type) {
	case *oisp.AIResponse:
		if d.Usage != nil {
			return d.Usage.PromptTokens, d.Usage.CompletionTokens
		}
	case *oisp.AIEmbedding:
		if d.Usage != nil {
			return d.Usage.PromptTokens, d.Usage.CompletionTokens
		}
		return d.TotalTokens, nil
	}
	return nil, nil
}

// outcome adds http.response.status_code and error.type, and reports a
// failure: a status of 400 or more, success false, or an error.
func outcome(a *attrs, code int, success *bool, perr *oisp.Error) bool {
	if code != 0 {
		a.int("http.response.status_code", int64(code))
	}
	et := errorType(code, success, perr)
	a.str("error.type", et)
	return et != ""
}

// errorType is the error.type of a call's outcome, "" when it succeeded.
func errorType(code int, success *bool, perr *oisp.Error) string {
	failed := code >= 400 || (success != nil && !*success) || perr != nil
	switch {
	case !failed:
		return ""
	case perr != nil && perr.Type != "":
		return perr.Type
	case perr != nil && perr.Code != "":
		return perr.Code
	case code >= 400:
		// The conventions' fallback when no better class exists.
		return strconv.Itoa(code)
	}
	return "_OTHER"
}

// toolType maps OISP's tool type onto gen_ai.tool.type (function,
// extension or datastore); other values pass through.
func toolType(t string) string {
	switch t {
	case "", "function":
		return t
	case "retrieval", "file_search", "database":
		return "datastore"
	case "mcp", "plugin", "extension":
		return "extension"
	}
	return t
}

// validUTF8 returns s with invalid UTF-8 replaced by U+FFFD, as JSON
// encoding does: protobuf string fields must be UTF-8, and a collector
// refuses the whole request over one bad string (process arguments and
// paths are bytes, not text).
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func nonEmpty(s, fallback string) string {
	if s != "" {
		return s
	}
	return fallback
}

// attrs appends LogRecord or Span attributes (KeyValue messages), leaving
// out empty values so that a record carries only what the event knew.
// Every key is written at most once per record.
type attrs struct {
	b []byte
	// field is the attributes' field number in the enclosing message.
	field protowire.Number
}

// header appends the framing of an attribute whose AnyValue is anyLen
// bytes long; the AnyValue's content follows.
func (a *attrs) header(key string, anyLen int) {
	kvLen := 1 + protowire.SizeBytes(len(key)) + 1 + protowire.SizeBytes(anyLen)
	a.b = protowire.AppendTag(a.b, a.field, protowire.BytesType)
	a.b = protowire.AppendVarint(a.b, uint64(kvLen))
	a.b = protowire.AppendTag(a.b, 1, protowire.BytesType) // KeyValue.key
	a.b = protowire.AppendString(a.b, key)
	a.b = protowire.AppendTag(a.b, 2, protowire.BytesType) // KeyValue.value
	a.b = protowire.AppendVarint(a.b, uint64(anyLen))
}

// AnyValue field numbers.
const (
	anyString = 1
	anyBool   = 2
	anyInt    = 3
	anyDouble = 4
	anyArray  = 5
)

func (a *attrs) str(key, v string) {
	if v == "" {
		return
	}
	v = validUTF8(v)
	a.header(key, 1+protowire.SizeBytes(len(v)))
	a.b = protowire.AppendTag(a.b, anyString, protowire.BytesType)
	a.b = protowire.AppendString(a.b, v)
}

func (a *attrs) int(key string, v int64) {
	a.header(key, 1+protowire.SizeVarint(uint64(v)))
	a.b = protowire.AppendTag(a.b, anyInt, protowire.VarintType)
	a.b = protowire.AppendVarint(a.b, uint64(v))
}

func (a *attrs) intp(key string, v *int) {
	if v != nil {
		a.int(key, int64(*v))
	}
}

func (a *attrs) float(key string, v float64) {
	a.header(key, 1+8)
	a.b = protowire.AppendTag(a.b, anyDouble, protowire.Fixed64Type)
	a.b = protowire.AppendFixed64(a.b, math.Float64bits(v))
}

func (a *attrs) floatp(key string, v *float64) {
	if v != nil {
		a.float(key, *v)
	}
}

func (a *attrs) bool(key string, v bool) {
	a.header(key, 1+1)
	a.b = protowire.AppendTag(a.b, anyBool, protowire.VarintType)
	a.b = protowire.AppendVarint(a.b, protowire.EncodeBool(v))
}

// strs appends an array of strings (an ArrayValue of string AnyValues).
func (a *attrs) strs(key string, vs []string) {
	if len(vs) == 0 {
		return
	}
	for i, v := range vs {
		if !utf8.ValidString(v) {
			// Copy before fixing: vs belongs to the event.
			vs = append([]string(nil), vs...)
			for j := i; j < len(vs); j++ {
				vs[j] = validUTF8(vs[j])
			}
			break
		}
	}
	arrayLen := 0
	for _, v := range vs {
		arrayLen += 1 + protowire.SizeBytes(1+protowire.SizeBytes(len(v)))
	}
	a.header(key, 1+protowire.SizeBytes(arrayLen))
	a.b = protowire.AppendTag(a.b, anyArray, protowire.BytesType)
	a.b = protowire.AppendVarint(a.b, uint64(arrayLen))
	for _, v := range vs {
		a.b = protowire.AppendTag(a.b, 1, protowire.BytesType) // ArrayValue.values
		a.b = protowire.AppendVarint(a.b, uint64(1+protowire.SizeBytes(len(v))))
		a.b = protowire.AppendTag(a.b, anyString, protowire.BytesType)
		a.b = protowire.AppendString(a.b, v)
	}
}

func str(v string) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}
}

// Field numbers of the OTLP messages a batch is assembled from.
const (
	fieldRequestResourceLogs = 1 // ExportLogsServiceRequest.resource_logs
	fieldResourceLogsScope   = 2 // ResourceLogs.scope_logs
	fieldScopeLogsRecords    = 2 // ScopeLogs.log_records
)

// assemble writes an ExportLogsServiceRequest holding records under one
// resource and scope (or an ExportTraceServiceRequest holding spans: its
// ResourceSpans and ScopeSpans number their fields as ResourceLogs and
// ScopeLogs do, so the same framing and the same resource and scope bytes
// serve both). The records are already serialised, so the batch is
// built by framing them rather than by decoding and encoding them again:
// a repeated message field is its elements, each tagged and
// length-prefixed, in any order of appearance.
func assemble(dst []byte, resourceAndSchema, scope []byte, records [][]byte) []byte {
	scopeLogsLen := len(scope)
	for _, r := range records {
		scopeLogsLen += protowire.SizeTag(fieldScopeLogsRecords) + protowire.SizeBytes(len(r))
	}
	resourceLogsLen := len(resourceAndSchema) + protowire.SizeTag(fieldResourceLogsScope) + protowire.SizeBytes(scopeLogsLen)

	dst = protowire.AppendTag(dst, fieldRequestResourceLogs, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(resourceLogsLen))
	dst = append(dst, resourceAndSchema...)
	dst = protowire.AppendTag(dst, fieldResourceLogsScope, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(scopeLogsLen))
	dst = append(dst, scope...)
	for _, r := range records {
		dst = protowire.AppendTag(dst, fieldScopeLogsRecords, protowire.BytesType)
		dst = protowire.AppendBytes(dst, r)
	}
	return dst
}
