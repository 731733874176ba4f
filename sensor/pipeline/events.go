package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/provider"
	"github.com/oisp/oisp-sensor/sensor/secret"
)

// exchange turns one finished HTTP exchange into events.
func (p *Pipeline) exchange(fs *flowState, x *httpmsg.Exchange) {
	p.stats.Count("http.exchanges", 1)
	if x.Partial {
		p.stats.Count("http.exchanges_partial", 1)
	}
	if x.Flow == nil {
		x.Flow = fs.info
	}
	t := p.target(fs, x)
	var (
		api provider.API
		res *provider.Result
	)
	for _, a := range p.cfg.APIs {
		if !a.Match(t, x) {
			continue
		}
		r, err := a.Decode(t, x, provider.Env{Registry: p.cfg.Registry, Stats: p.stats})
		if err != nil {
			p.stats.Count("ai.decode_errors", 1)
			p.log.Debug("ai decode failed", "api", a.Name(), "url", secret.RedactURL(x.Request.URL()), "err", err)
			continue
		}
		if r == nil {
			continue
		}
		api, res = a, r
		break
	}
	if res == nil {
		p.stats.Count("http.exchanges_not_ai", 1)
		if t.Known && (x.Response == nil || x.Response.Status != 101) {
			// A provider's host, but no API call the sensor decodes (file
			// uploads, batch and model listings, an endpoint newer than
			// the sensor): counted and shown with -v, so a gap is visible.
			// (An upgrade to WebSocket is not a call: its session is.)
			p.stats.Count("http.provider_exchanges_not_decoded", 1)
			p.log.Debug("provider exchange not decoded as an AI call", "provider", t.ProviderID,
				"method", x.Request.Method, "path", pathOnly(x.Request.Target))
		}
		return
	}
	p.stats.Count("ai.exchanges", 1)
	p.emitAI(fs, x, t, api.Name(), res)
}

// pathOnly is a request target without its query, which may carry keys.
func pathOnly(target string) string {
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		return target[:i]
	}
	return target
}

// target looks up the provider of an exchange's host.
func (p *Pipeline) target(fs *flowState, x *httpmsg.Exchange) provider.Target {
	port := int(fs.info.RemotePort)
	if port == 0 && fs.info.Remote.IsValid() {
		port = int(fs.info.Remote.Port())
	}
	return p.targets.lookup(p.cfg.Registry, hostWithoutDefaultPort(x), port)
}

// targetCache remembers Registry.Lookup by host and port. A lookup that
// reaches the registry's host patterns (regular expressions) costs about a
// microsecond, and a capture sees few distinct hosts.
type targetCache struct {
	memo boundedMemo[targetKey, provider.Target]
}

type targetKey struct {
	host string
	port int
}

// maxCachedTargets bounds the targets a pipeline remembers.
const maxCachedTargets = 1024

func (c *targetCache) lookup(reg *provider.Registry, host string, port int) provider.Target {
	k := targetKey{host, port}
	if t, ok := c.memo.get(k); ok {
		return t
	}
	t, _ := reg.Lookup(host, port)
	// Host strings are substrings of a header block: copies keep the
	// blocks from staying alive with the cache.
	k.host = strings.Clone(host)
	if t.Host == host {
		t.Host = k.host
	} else {
		t.Host = strings.Clone(t.Host)
	}
	c.memo.put(k, t, maxCachedTargets)
	return t
}

// hostWithoutDefaultPort returns the request authority for registry lookup.
func hostWithoutDefaultPort(x *httpmsg.Exchange) string {
	h := x.Request.Authority
	if h == "" && x.Flow != nil {
		h = x.Flow.Host()
	}
	h = strings.TrimSuffix(h, ":443")
	return h
}

func (p *Pipeline) emitAI(fs *flowState, x *httpmsg.Exchange, t provider.Target, api string, res *provider.Result) {
	info := fs.info
	proc, actor, attrs := fs.shared()
	xPartial, xNotes := x.Partial, x.Notes
	whole := res.SettleEndUnseen(x)
	if whole {
		// The transport missed only the response's end, and the stream
		// carried its own end marker: nothing of the response was cut.
		p.stats.Count("http.end_unseen_after_stream_end", 1)
		xPartial, xNotes = false, nil
	}
	partial := xPartial || res.Partial
	reqAt := x.Request.Start
	if reqAt.IsZero() {
		reqAt = info.Started
	}
	method := captureMethod(info)
	var calls []oisp.ToolCall
	if res.Response != nil {
		calls = res.Response.ToolCalls
	}
	// callBlocks holds the response's tool call events (an embedding has
	// none): a single one is allocated with the exchange's events, more
	// in one array of their own.
	var (
		block      *exchangeEvents
		callBlocks []toolCallBlock
	)
	switch {
	case res.Embedding != nil || len(calls) == 0:
		block = new(exchangeEvents)
	case len(calls) == 1:
		withCall := new(exchangeWithCall)
		block, callBlocks = &withCall.exchangeEvents, withCall.call[:]
	default:
		block = new(exchangeEvents)
		callBlocks = make([]toolCallBlock, len(calls))
	}
	block.confidence = p.confidence(info, t, partial, append(append([]string(nil), xNotes...), res.Notes...))
	conf := &block.confidence

	respAt := time.Time{}
	if x.Response != nil {
		respAt = x.Response.End
		if respAt.IsZero() {
			respAt = x.Response.Start
		}
	}
	if respAt.IsZero() {
		respAt = reqAt
	}

	// Every event of the exchange is stamped at once, in the order the
	// events go out (ids are made in that order), sharing one string.
	req := res.Request
	reqEv := &block.request
	// Tool results carried by this request answer calls made earlier.
	var resultRoom [4]answeredResult
	results := resultRoom[:0]
	for i := range res.ToolResults {
		call, first := p.links.answer(callerOf(info), res.ToolResults[i].CallID)
		if !first {
			p.stats.Count("agent.tool_results_repeated", 1)
			continue
		}
		results = append(results, answeredResult{result: &res.ToolResults[i], call: call})
	}
	if len(results) > 0 {
		// One allocation for all the result events of the request.
		blocks := make([]toolResultBlock, len(results))
		for i := range results {
			results[i].blk = &blocks[i]
		}
	}

	var stampRoom [8]oisp.Stamp
	stamps := stampRoom[:0]
	if n := 3 + len(results) + len(calls); n > len(stampRoom) {
		stamps = make([]oisp.Stamp, 0, n)
	}
	stamps = append(stamps, oisp.Stamp{Event: reqEv, Type: oisp.TypeAIRequest, At: reqAt, Data: req})
	for _, a := range results {
		stamps = append(stamps, oisp.Stamp{Event: &a.blk.event, Type: oisp.TypeToolResult, At: reqAt, Data: &a.blk.data})
	}

	var embeddingEv *oisp.Event
	switch {
	case res.Embedding != nil:
		// Every ai.request is answered by an ai.response (status, usage,
		// latency), whatever the request type; ai.embedding adds what only
		// embeddings have (input count, dimensions).
		embeddingEv = new(oisp.Event)
		stamps = append(stamps,
			oisp.Stamp{Event: &block.response, Type: oisp.TypeAIResponse, At: respAt},
			oisp.Stamp{Event: embeddingEv, Type: oisp.TypeAIEmbedding, At: respAt, Data: res.Embedding})
	case res.Response != nil:
		stamps = append(stamps, oisp.Stamp{Event: &block.response, Type: oisp.TypeAIResponse, At: respAt, Data: res.Response})
		for k := range callBlocks {
			blk := &callBlocks[k]
			stamps = append(stamps, oisp.Stamp{Event: &blk.event, Type: oisp.TypeToolCall, At: respAt, Data: &blk.data})
		}
	}
	var conv [conversationIDLen]byte
	var convBytes []byte
	if res.Chain != nil && res.Chain.Continues != "" {
		var seen bool
		convBytes, seen = p.chains.appendConversationOf(conv[:0], info, req, res.Chain.Continues)
		if !seen {
			p.stats.Count("ai.continues_unseen", 1)
		}
	} else {
		convBytes = appendConversationID(conv[:0], info, req)
	}
	requestID, convID := p.cfg.Builder.InitWithID("req_", convBytes, method, stamps...)
	req.RequestID = requestID
	req.ConversationID = convID
	if p.cfg.Content == ContentMetadata {
		redactRequest(req)
	}
	p.finish(reqEv, info, proc, actor, attrs, conf, "request")
	p.out(fs, reqEv)

	for _, a := range results {
		blk, tr, call := a.blk, a.result, a.call
		d := &blk.data
		d.CallID, d.RequestID = tr.CallID, requestID
		if tr.Name != "" {
			blk.tool = oisp.ToolInfo{Name: tr.Name, Type: p.toolTypes.of(tr.Name)}
			d.Tool = &blk.tool
		}
		blk.success = !tr.IsError
		d.Success = &blk.success
		d.ResultSizeBytes = len(tr.Content)
		d.ResultHash = oisp.Hash(tr.Content)
		if p.cfg.Content == ContentFull {
			d.Result = tr.Content
		}
		ev := &blk.event
		p.finish(ev, info, proc, actor, attrs, conf, "request")
		if call.eventID != "" {
			blk.related = [2]oisp.Related{
				{EventID: reqEv.EventID, Relationship: oisp.RelCausedBy},
				{EventID: call.eventID, Relationship: oisp.RelParent}}
			ev.RelatedEvents = blk.related[:]
			if d.Tool == nil && call.name != "" {
				blk.tool = oisp.ToolInfo{Name: call.name, Type: p.toolTypes.of(call.name)}
				d.Tool = &blk.tool
			}
		} else {
			blk.related[0] = oisp.Related{EventID: reqEv.EventID, Relationship: oisp.RelCausedBy}
			ev.RelatedEvents = blk.related[:1:1]
			p.stats.Count("agent.tool_results_unlinked", 1)
		}
		p.out(fs, ev)
	}

	switch {
	case res.Embedding != nil:
		e := res.Embedding
		e.RequestID = requestID
		rconf := responseConfidence(conf, x, whole)
		rev := &block.response
		rev.Data = embeddingResponse(e, req.ConversationID)
		p.finish(rev, info, proc, actor, attrs, rconf, "response")
		block.related[0] = oisp.Related{EventID: reqEv.EventID, Relationship: oisp.RelParent}
		rev.RelatedEvents = block.related[0:1:1]
		p.out(fs, rev)
		ev := embeddingEv
		p.finish(ev, info, proc, actor, attrs, rconf, "response")
		block.related[1] = oisp.Related{EventID: rev.EventID, Relationship: oisp.RelCausedBy}
		ev.RelatedEvents = block.related[1:2:2]
		p.out(fs, ev)
	case res.Response != nil:
		r := res.Response
		r.RequestID = requestID
		r.ConversationID = req.ConversationID
		if c := res.Chain; c != nil && c.ContinuedBy != "" && convID != "" && (r.Success == nil || *r.Success) {
			p.chains.remember(req.Provider, c.ContinuedBy, convID)
		}
		if p.cfg.Content == ContentMetadata {
			redactResponse(r)
		}
		rconf := responseConfidence(conf, x, whole)
		ev := &block.response
		p.finish(ev, info, proc, actor, attrs, rconf, "response")
		block.related[0] = oisp.Related{EventID: reqEv.EventID, Relationship: oisp.RelParent}
		ev.RelatedEvents = block.related[0:1:1]
		p.out(fs, ev)
		for k, c := range calls {
			// The provider hashed arguments it saw; only empty ones are
			// left to hash here.
			argsHash := c.ArgumentsHash
			if argsHash == "" {
				argsHash = oisp.Hash(c.Arguments)
			}
			blk := &callBlocks[k]
			d := &blk.data
			*d = oisp.ToolCallEvent{
				Tool:          oisp.ToolInfo{Name: c.Name, Type: p.toolTypes.of(c.Name)},
				CallID:        c.ID,
				TriggeredBy:   "llm_decision",
				ArgumentsHash: argsHash,
				RequestID:     requestID,
			}
			if p.cfg.Content == ContentFull {
				d.Arguments = argumentsObject(c.Arguments)
			}
			tev := &blk.event
			p.finish(tev, info, proc, actor, attrs, rconf, "response")
			blk.related[0] = oisp.Related{EventID: ev.EventID, Relationship: oisp.RelCausedBy}
			tev.RelatedEvents = blk.related[:]
			if c.ID != "" {
				p.links.put(callerOf(info), c.ID, link{eventID: tev.EventID, name: c.Name})
			}
			p.out(fs, tev)
		}
	}
}

// answeredResult is a tool result event to emit: its block, the result and
// the call it answers.
type answeredResult struct {
	blk    *toolResultBlock
	result *provider.ToolResult
	call   link
}

// exchangeEvents holds what every AI exchange emits, its ai.request and
// ai.response events, their confidence and their links, in one allocation
// instead of five. (Recorders that keep one of the events keep the block:
// it is small.) Every event of the exchange points at confidence, but for
// a response that did not complete (see responseConfidence). related holds
// the response's link and an embedding event's; each event gets its own
// element as a slice capped at its length, so appending to one never
// writes into another.
type exchangeEvents struct {
	request, response oisp.Event
	confidence        oisp.Confidence
	related           [2]oisp.Related
}

// exchangeWithCall is the events of an exchange whose response makes one
// tool call, and that call's event, in one allocation.
type exchangeWithCall struct {
	exchangeEvents
	call [1]toolCallBlock
}

// toolCallBlock is an agent.tool_call event, its data and its link,
// allocated together as they live and die together; a response's blocks
// are one array. (Recorders that keep one of the events keep the array.)
type toolCallBlock struct {
	event   oisp.Event
	data    oisp.ToolCallEvent
	related [1]oisp.Related
}

// toolResultBlock is an agent.tool_result event and its data with the
// values the data points to and its links, allocated together; a request's
// blocks are one array.
type toolResultBlock struct {
	event   oisp.Event
	data    oisp.ToolResultEvent
	tool    oisp.ToolInfo
	success bool
	related [2]oisp.Related
}

// responseConfidence is the request's confidence, or a partial copy of it
// when the response did not complete (and the content did not show it
// whole).
func responseConfidence(conf *oisp.Confidence, x *httpmsg.Exchange, whole bool) *oisp.Confidence {
	if x.Response != nil && !x.Response.Complete && !whole && conf.Completeness != oisp.CompletePartial {
		partial := *conf
		partial.Completeness = oisp.CompletePartial
		return &partial
	}
	return conf
}

// embeddingResponse is the ai.response of an embedding request.
func embeddingResponse(e *oisp.AIEmbedding, conversationID string) *oisp.AIResponse {
	r := &oisp.AIResponse{
		RequestID:      e.RequestID,
		ConversationID: conversationID,
		Provider:       e.Provider,
		Model:          e.Model,
		StatusCode:     e.StatusCode,
		Success:        e.Success,
		Error:          e.Error,
		Usage:          e.Usage,
		LatencyMS:      e.LatencyMS,
	}
	if r.Usage == nil && e.TotalTokens != nil {
		r.Usage = &oisp.Usage{PromptTokens: e.TotalTokens, TotalTokens: e.TotalTokens}
	}
	if r.Error != nil {
		r.FinishReason = oisp.FinishError
	}
	return r
}

func (p *Pipeline) out(fs *flowState, ev *oisp.Event) {
	fs.events++
	p.stats.Count(eventCounter(ev.EventType), 1)
	p.cfg.Out.Record(ev)
}

// eventCounter is the counter token of an event type (constant for the
// types the pipeline emits, so counting costs no allocation).
func eventCounter(eventType string) string {
	switch eventType {
	case oisp.TypeAIRequest:
		return "events." + oisp.TypeAIRequest
	case oisp.TypeAIResponse:
		return "events." + oisp.TypeAIResponse
	case oisp.TypeAIEmbedding:
		return "events." + oisp.TypeAIEmbedding
	case oisp.TypeToolCall:
		return "events." + oisp.TypeToolCall
	case oisp.TypeToolResult:
		return "events." + oisp.TypeToolResult
	}
	return "events." + eventType
}

// finish fills the per-flow parts of an envelope.
func (p *Pipeline) finish(ev *oisp.Event, info *flow.Info, proc *oisp.Process, actor *oisp.Actor, attrs *oisp.Attrs, conf *oisp.Confidence, side string) {
	ev.Process = proc
	ev.Actor = actor
	ev.Confidence = conf
	switch info.Method {
	case flow.CaptureEBPFUprobe:
		if side == "request" {
			ev.Source.CapturePoint = "ssl_write"
		} else {
			ev.Source.CapturePoint = "ssl_read"
		}
	case flow.CaptureMITMProxy:
		ev.Source.CapturePoint = "proxy"
	case flow.CaptureNetworkExtension:
		ev.Source.CapturePoint = "network_extension"
	case flow.CaptureOther, "":
		ev.Source.CapturePoint = "replay"
	}
	if attrs != nil {
		ev.Attrs = attrs
	}
}

// actorOf is the actor of a flow's events (shared by the events of an
// exchange, like the process).
func actorOf(info *flow.Info) *oisp.Actor {
	if info.Process.UID >= 0 && info.Process.PID != 0 {
		return &oisp.Actor{UID: oisp.Ptr(info.Process.UID)}
	}
	return nil
}

// flowAttrs are the attributes of a flow's events: the flow id when the
// flow is not plain HTTP/1 over TCP (HTTP/2 and HTTP/3 multiplex several
// exchanges on one flow). The events of a flow share them; nothing
// writes to them after this.
func flowAttrs(info *flow.Info) *oisp.Attrs {
	if info.ALPN != "" || info.Transport == flow.QUIC {
		return &oisp.Attrs{FlowID: info.ID}
	}
	return nil
}

func captureMethod(info *flow.Info) string {
	if info.Method == "" {
		return string(flow.CaptureOther)
	}
	return string(info.Method)
}

func processOf(info *flow.Info) *oisp.Process {
	pr := info.Process
	if pr.PID == 0 && pr.Exe == "" && pr.Name == "" {
		return nil
	}
	out := &oisp.Process{
		PID: pr.PID, PPID: pr.PPID, Exe: pr.Exe, Name: pr.Name,
		BundleID: pr.BundleID, ContainerID: pr.ContainerID, Cgroup: pr.Cgroup,
	}
	if len(pr.Cmdline) > 0 {
		// Command lines carry credentials often enough (curl -H
		// "Authorization: …", --api-key, keys in URLs) to be redacted
		// always.
		out.CmdlineArgs = secret.RedactArgs(pr.Cmdline)
		out.Cmdline = strings.Join(out.CmdlineArgs, " ")
	}
	return out
}

func (p *Pipeline) confidence(info *flow.Info, t provider.Target, partial bool, notes []string) oisp.Confidence {
	c := oisp.Confidence{Level: oisp.LevelHigh, Completeness: oisp.CompleteFull, AIDetectionMethod: "known_endpoint"}
	if !t.Known {
		c.Level = oisp.LevelMedium
		c.AIDetectionMethod = "payload_inspection"
	}
	switch info.Method {
	case flow.CaptureEBPFUprobe, flow.CaptureTLSBoundary:
		c.ContentSource = "tls_boundary"
	case flow.CaptureMITMProxy, flow.CaptureNetworkExtension:
		c.ContentSource = "mitm_decryption"
	default:
		c.ContentSource = "plaintext_capture"
	}
	switch {
	case info.Process.PID != 0 && info.Method == flow.CaptureEBPFUprobe:
		c.ProcessAttribution = "direct"
	case info.Process.PID != 0:
		c.ProcessAttribution = "socket_inode"
	}
	if partial {
		c.Completeness = oisp.CompletePartial
		if c.Level == oisp.LevelHigh {
			c.Level = oisp.LevelMedium
		}
	}
	if len(notes) > 0 {
		c.Limitations = notes
	}
	return c
}

// conversationPrefix and conversationIDLen are the form of a conversation
// id: the prefix and 16 hex digits.
const (
	conversationPrefix = "conv_"
	conversationIDLen  = len(conversationPrefix) + 16
)

// appendConversationID appends the id grouping the requests of one
// conversation to dst: the same process, provider, system prompt and first
// user message (agent loops resend the history, so every step of a loop
// shares it). A request without messages has none. (The id is appended to
// bytes rather than made a string so that it can share the request's
// string of ids.)
func appendConversationID(dst []byte, info *flow.Info, req *oisp.AIRequest) []byte {
	if len(req.Messages) == 0 {
		return dst
	}
	h := conversationHash(info, req)
	sep := []byte{'|'}
	writeString(h, req.SystemPromptHash)
	for _, m := range req.Messages {
		if m.Role == "user" {
			h.Write(sep)
			writeString(h, m.Content)
			writeString(h, m.ContentHash)
			break
		}
	}
	return appendConversationSum(dst, h)
}

// conversationHash starts the hash of a conversation key with what every
// key holds: the process and the provider. The key is hashed piece by
// piece rather than built as a string first: its last piece can be long.
func conversationHash(info *flow.Info, req *oisp.AIRequest) hash.Hash {
	h := sha256.New()
	var num [20]byte
	h.Write(strconv.AppendInt(num[:0], int64(info.Process.PID), 10))
	sep := []byte{'|'}
	h.Write(sep)
	writeString(h, info.Process.Exe)
	h.Write(sep)
	if req.Provider != nil {
		writeString(h, req.Provider.Name)
		writeString(h, req.Provider.ID)
	}
	h.Write(sep)
	return h
}

// appendConversationSum appends the conversation id h sums to.
func appendConversationSum(dst []byte, h hash.Hash) []byte {
	var sum [sha256.Size]byte
	dst = append(dst, conversationPrefix...)
	return hex.AppendEncode(dst, h.Sum(sum[:0])[:8])
}

// writeString writes s to w without copying it: io.Writer implementations
// neither keep nor modify what they are given.
func writeString(w io.Writer, s string) {
	w.Write(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// toolType guesses the agent tool_info.type from a tool name.
func toolType(name string) string {
	n := strings.ToLower(name)
	switch {
	case strings.Contains(n, "bash") || strings.Contains(n, "shell") || strings.Contains(n, "terminal") || strings.Contains(n, "exec"):
		return "shell"
	case strings.Contains(n, "read_file") || strings.Contains(n, "readfile") || n == "read" || n == "view":
		return "file_read"
	case strings.Contains(n, "write_file") || strings.Contains(n, "writefile") || n == "write" || n == "create_file":
		return "file_write"
	case strings.Contains(n, "edit") || strings.Contains(n, "str_replace"):
		return "file_edit"
	case strings.Contains(n, "search"):
		return "search"
	case strings.Contains(n, "browser") || strings.Contains(n, "navigate"):
		return "browser"
	case strings.Contains(n, "computer"):
		return "computer_use"
	case strings.Contains(n, "http") || strings.Contains(n, "fetch") || strings.Contains(n, "request"):
		return "http"
	case strings.Contains(n, "sql") || strings.Contains(n, "query") || strings.Contains(n, "database"):
		return "database"
	case strings.Contains(n, "python") || strings.Contains(n, "code"):
		return "code_execution"
	}
	return "other"
}
