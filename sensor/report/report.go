// Package report owns summarising recorded OISP events: what AI did on a
// machine over the period a recording covers — calls, errors, tokens, cache
// use, the sensor's own cost estimates and latencies per provider and model,
// per application, per conversation (the agent sessions the sensor told
// apart), tools the models called, and embeddings.
//
// It reads decoded events (the JSON lines `record` and `replay` write),
// never the capture or the decoders behind them. A Report is fed one line
// at a time and keeps only aggregates: its memory is bounded by the number
// of distinct groups (capped, see Options) and the requests still waiting
// for their response (capped too), never by the size of the input.
package report

import (
	"bufio"
	"bytes"
	"container/list"
	"errors"
	"fmt"
	"io"
	"path"
	"time"

	json "github.com/goccy/go-json"

	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// Options bound a Report's memory and choose what it counts. Zero values
// take the defaults named on each field.
type Options struct {
	// Since and Until, when set, skip events stamped before Since or at or
	// after Until (they are counted as Filtered).
	Since, Until time.Time
	// MaxGroups caps the distinct provider/model groups, and separately
	// the applications; events of further ones are folded into a group
	// named "(other)". Default 1000.
	MaxGroups int
	// MaxTools caps the distinct tool names (default 1000); further ones
	// fold into "(other)".
	MaxTools int
	// MaxErrorTypes caps the distinct error types kept per group (default
	// 20); further ones fold into "(other)".
	MaxErrorTypes int
	// MaxPending caps the requests kept while waiting for their response
	// (default 100000). Past it the oldest is given up on and reported as
	// "no response seen".
	MaxPending int
	// MaxBadLineSamples is how many bad lines are kept with their reason
	// (default 5); all are counted.
	MaxBadLineSamples int
	// MaxLineBytes is the longest line Read accepts (default 64 MiB);
	// a longer one is skipped and counted as bad.
	MaxLineBytes int
	// MaxConversations caps the distinct conversations (default 10000);
	// calls of further ones are folded into a row named "(other)".
	MaxConversations int

	// Conversation, when set, restricts the report to the conversation
	// with this data.conversation_id: its ai.request and ai.response
	// events, and the events that carry no conversation id but are
	// related to one kept (tool calls and results, embeddings). The
	// other events are counted as Filtered.
	Conversation string
}

func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxGroups, 1000)
	def(&o.MaxTools, 1000)
	def(&o.MaxErrorTypes, 20)
	def(&o.MaxPending, 100000)
	def(&o.MaxBadLineSamples, 5)
	def(&o.MaxLineBytes, 64<<20)
	def(&o.MaxConversations, 10000)
	return o
}

// OtherGroup names the group that events past a cap are folded into.
const OtherGroup = "(other)"

// Unknown names a provider, model or application an event does not say.
const Unknown = "(unknown)"

// LineError is a line that is not an OISP event. Add returns it; the
// Report keeps the first few.
type LineError struct {
	Input  string `json:"input,omitempty"`
	Line   int64  `json:"line"`
	Reason string `json:"reason"`
}

func (e *LineError) Error() string {
	if e.Input != "" {
		return fmt.Sprintf("%s:%d: %s", e.Input, e.Line, e.Reason)
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
}

// Report accumulates events. It is not safe for concurrent use.
type Report struct {
	opts Options

	input string // name of the current input, for LineError
	line  int64  // line number within the current input

	lines, events, filtered, badLines int64
	badSamples                        []LineError
	first, last                       time.Time
	eventTypes                        map[string]int64

	models    map[groupKey]*Stats
	apps      map[string]*Stats
	tools     map[string]*toolStats
	embedding map[groupKey]*Embedding
	overflow  Overflow

	conversations  map[string]*Conversation
	noConversation int64     // calls whose events carry no conversation_id
	kept           recentIDs // with Options.Conversation: the events kept

	pending      map[string]*list.Element // request event_id → element of pendingOrder
	pendingOrder *list.List               // of *pendingRequest, oldest first
	evicted      int64

	ev event // decoded into, reused line after line
}

type groupKey struct{ provider, model string }

// pendingRequest is what a request leaves behind until its response comes.
type pendingRequest struct {
	id        string
	provider  string
	model     string
	app       string
	streaming bool
	// conversation is the request's data.conversation_id, at its ts.
	conversation string
	at           time.Time
}

// New returns an empty Report.
func New(opts Options) *Report {
	return &Report{
		opts:          opts.withDefaults(),
		eventTypes:    map[string]int64{},
		models:        map[groupKey]*Stats{},
		apps:          map[string]*Stats{},
		tools:         map[string]*toolStats{},
		embedding:     map[groupKey]*Embedding{},
		conversations: map[string]*Conversation{},
		pending:       map[string]*list.Element{},
		pendingOrder:  list.New(),
	}
}

// StartInput names the input the following Add calls read (a file name,
// "-" for standard input) and restarts line numbering at 1. Events relate
// to events of their own input only (recordings concatenated may repeat
// event ids), so Options.Conversation forgets the events it kept.
func (r *Report) StartInput(name string) {
	r.input = name
	r.line = 0
	r.kept.reset()
}

// Read adds every line of rd as input name. Lines that are not events are
// counted and never stop it; it returns an error only when rd cannot be
// read.
func (r *Report) Read(name string, rd io.Reader) error {
	r.StartInput(name)
	br := bufio.NewReaderSize(rd, 256<<10)
	var long []byte // a line longer than br's buffer, gathered
	tooLong := false
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			if !tooLong {
				if len(long)+len(chunk) > r.opts.MaxLineBytes {
					tooLong, long = true, nil
				} else {
					long = append(long, chunk...)
				}
			}
			continue
		case err != nil && !errors.Is(err, io.EOF):
			return fmt.Errorf("read %s after line %d: %w", name, r.line, err)
		}
		line := chunk
		if long != nil {
			long = append(long, chunk...)
			line = long
		}
		switch {
		case tooLong:
			r.line++
			r.lines++
			r.bad(fmt.Sprintf("line longer than %d bytes", r.opts.MaxLineBytes))
		case len(line) > 0:
			r.Add(line)
		}
		long, tooLong = nil, false
		if err != nil { // io.EOF
			return nil
		}
	}
}

// Add counts one line of the current input: one JSON-encoded OISP event.
// A blank line is skipped; a line that is not an event is counted as bad
// and returned as a *LineError. Add never keeps line.
func (r *Report) Add(line []byte) error {
	r.line++
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return nil
	}
	r.lines++
	ev := &r.ev
	*ev = event{}
	if err := json.Unmarshal(line, ev); err != nil {
		if !json.Valid(line) {
			return r.bad("not JSON")
		}
		// The data of a type the report does not read may use the
		// field names below differently: only the envelope must fit.
		var env envelope
		if json.Unmarshal(line, &env) != nil || readsData(env.EventType) {
			return r.bad("not an OISP event: " + shorten(err.Error()))
		}
		*ev = event{OISPVersion: env.OISPVersion, EventID: env.EventID, EventType: env.EventType, TS: env.TS}
	}
	if ev.OISPVersion == "" || ev.EventType == "" || ev.EventID == "" || ev.TS == "" {
		return r.bad("not an OISP event: oisp_version, event_id, event_type or ts missing")
	}
	ts, err := time.Parse(time.RFC3339Nano, ev.TS)
	if err != nil {
		return r.bad(fmt.Sprintf("not an OISP event: ts %q is not an RFC 3339 time", shorten(ev.TS)))
	}
	if (!r.opts.Since.IsZero() && ts.Before(r.opts.Since)) || (!r.opts.Until.IsZero() && !ts.Before(r.opts.Until)) {
		r.filtered++
		return nil
	}
	if r.opts.Conversation != "" && !r.keep(ev) {
		r.filtered++
		return nil
	}
	r.events++
	if r.first.IsZero() || ts.Before(r.first) {
		r.first = ts
	}
	if ts.After(r.last) {
		r.last = ts
	}
	r.countType(ev.EventType)
	switch ev.EventType {
	case oisp.TypeAIRequest:
		r.addRequest(ev, ts)
	case oisp.TypeAIResponse:
		r.addResponse(ev, ts)
	case oisp.TypeToolCall:
		r.tool(ev.Data.Tool).Calls++
	case oisp.TypeToolResult:
		t := r.tool(ev.Data.Tool)
		t.Results++
		if ev.Data.Success != nil && !*ev.Data.Success {
			t.FailedResults++
		}
	case oisp.TypeAIEmbedding:
		r.addEmbedding(ev)
	}
	return nil
}

func (r *Report) bad(reason string) error {
	r.badLines++
	e := LineError{Input: r.input, Line: r.line, Reason: reason}
	if len(r.badSamples) < r.opts.MaxBadLineSamples {
		r.badSamples = append(r.badSamples, e)
	}
	return &e
}

func shorten(s string) string {
	const max = 120
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

func (r *Report) countType(t string) {
	if _, ok := r.eventTypes[t]; !ok && len(r.eventTypes) >= maxEventTypes {
		t = OtherGroup
	}
	r.eventTypes[t]++
}

// maxEventTypes caps the distinct event types counted: OISP has about
// twenty, so more means the input is not what it claims.
const maxEventTypes = 64

// keep says whether ev belongs to Options.Conversation: it names the
// conversation, or names none and is related to an event kept.
func (r *Report) keep(ev *event) bool {
	conv := ev.Data.ConversationID
	if conv == "" {
		for _, rel := range ev.RelatedEvents {
			if r.kept.has(rel.EventID) {
				conv = r.opts.Conversation
				break
			}
		}
	}
	if conv != r.opts.Conversation {
		return false
	}
	r.kept.add(ev.EventID)
	return true
}

func (r *Report) addRequest(ev *event, ts time.Time) {
	d := &ev.Data
	p := &pendingRequest{
		id:           ev.EventID,
		provider:     providerName(d.Provider),
		model:        modelName(d.Model, false),
		app:          appName(ev),
		streaming:    d.Streaming != nil && *d.Streaming,
		conversation: d.ConversationID,
		at:           ts,
	}
	if old, ok := r.pending[p.id]; ok {
		// The same id again (recordings concatenated whose ids repeat):
		// the earlier request's response will not be told apart.
		r.giveUp(old)
	}
	for len(r.pending) >= r.opts.MaxPending {
		r.evicted++
		r.giveUp(r.pendingOrder.Front())
	}
	r.pending[p.id] = r.pendingOrder.PushBack(p)
}

// giveUp counts a request whose response will not be seen.
func (r *Report) giveUp(el *list.Element) {
	p := r.pendingOrder.Remove(el).(*pendingRequest)
	delete(r.pending, p.id)
	r.noResponse(p, r.modelStats(p.provider, p.model), r.appStats(p.app), r.conversation(p.conversation))
}

// noResponse counts p as a call with no response seen; conv is nil when p
// names no conversation.
func (r *Report) noResponse(p *pendingRequest, model, app *Stats, conv *Conversation) {
	for _, s := range [...]*Stats{model, app} {
		s.Calls++
		s.NoResponse++
		s.Unpriced++
		if p.streaming {
			s.Streamed++
		}
	}
	if conv == nil {
		return
	}
	conv.call(p.app, p.provider, p.model, p.at, p.at)
	conv.NoResponse++
	conv.Unpriced++
}

// request removes and returns the pending request ev answers, if seen.
func (r *Report) request(ev *event) *pendingRequest {
	for _, rel := range ev.RelatedEvents {
		if rel.Relationship != oisp.RelParent {
			continue
		}
		if el, ok := r.pending[rel.EventID]; ok {
			delete(r.pending, rel.EventID)
			return r.pendingOrder.Remove(el).(*pendingRequest)
		}
	}
	return nil
}

func (r *Report) addResponse(ev *event, ts time.Time) {
	d := &ev.Data
	req := r.request(ev)
	provider, model, app := providerName(d.Provider), modelName(d.Model, true), appName(ev)
	streamed := d.Streaming != nil && *d.Streaming
	conv, start := d.ConversationID, ts
	if req != nil {
		if conv == "" {
			conv = req.conversation
		}
		start = req.at
		if provider == Unknown {
			provider = req.provider
		}
		if model == Unknown {
			model = req.model
		}
		if app == Unknown {
			app = req.app
		}
		if d.Streaming == nil {
			streamed = req.streaming
		}
	}
	failed, errType := failure(d)
	for _, s := range [...]*Stats{r.modelStats(provider, model), r.appStats(app)} {
		s.Calls++
		if streamed {
			s.Streamed++
		}
		if failed {
			s.Errors++
			s.errorType(errType, r.opts.MaxErrorTypes)
		}
		s.addUsage(d.Usage)
		if d.LatencyMS != nil {
			s.latency.add(*d.LatencyMS)
		}
		if d.TimeToFirstTokenMS != nil {
			s.ttft.add(*d.TimeToFirstTokenMS)
		}
	}
	if c := r.conversation(conv); c != nil {
		c.call(app, provider, model, start, ts)
		if failed {
			c.Errors++
		}
		c.addUsage(d.Usage)
		c.ToolCalls += int64(max(d.ToolCallsCount, 0))
	}
}

// failure says whether a response failed and how, in the provider's words
// when it gave any.
func failure(d *eventData) (bool, string) {
	failed := (d.Success != nil && !*d.Success) || d.Error != nil ||
		(d.Success == nil && d.StatusCode >= 400)
	if !failed {
		return false, ""
	}
	switch {
	case d.Error != nil && d.Error.Type != "":
		return true, d.Error.Type
	case d.Error != nil && d.Error.Code != "":
		return true, "code " + d.Error.Code
	case d.StatusCode != 0:
		return true, fmt.Sprintf("http %d", d.StatusCode)
	}
	return true, Unknown
}

func (r *Report) addEmbedding(ev *event) {
	d := &ev.Data
	k := groupKey{providerName(d.Provider), modelName(d.Model, true)}
	e, ok := r.embedding[k]
	if !ok {
		if len(r.embedding) >= r.opts.MaxGroups {
			k = groupKey{OtherGroup, OtherGroup}
			r.overflow.Embeddings++
			e = r.embedding[k]
		}
		if e == nil {
			e = &Embedding{}
			r.embedding[k] = e
		}
	}
	e.Events++
	e.Inputs += int64(d.InputCount)
	e.Vectors += int64(d.EmbeddingCount)
	switch {
	case d.TotalTokens != nil:
		e.Tokens += int64(*d.TotalTokens)
	case d.Usage != nil && d.Usage.PromptTokens != nil:
		e.Tokens += int64(*d.Usage.PromptTokens)
	}
	if failed, _ := failure(d); failed {
		e.Errors++
	}
}

func (r *Report) modelStats(provider, model string) *Stats {
	k := groupKey{provider, model}
	if _, ok := r.models[k]; !ok && len(r.models) >= r.opts.MaxGroups {
		r.overflow.Models++
	}
	return capped(r.models, k, groupKey{OtherGroup, OtherGroup}, r.opts.MaxGroups)
}

func (r *Report) appStats(app string) *Stats {
	if _, ok := r.apps[app]; !ok && len(r.apps) >= r.opts.MaxGroups {
		r.overflow.Apps++
	}
	return capped(r.apps, app, OtherGroup, r.opts.MaxGroups)
}

// conversation returns the row of conversation id, nil (and the call
// counted as in none) when id is empty.
func (r *Report) conversation(id string) *Conversation {
	if id == "" {
		r.noConversation++
		return nil
	}
	if _, ok := r.conversations[id]; !ok && len(r.conversations) >= r.opts.MaxConversations {
		r.overflow.Conversations++
	}
	return capped(r.conversations, id, OtherGroup, r.opts.MaxConversations)
}

func (r *Report) tool(info *oisp.ToolInfo) *toolStats {
	name := "(unnamed)"
	if info != nil && info.Name != "" {
		name = info.Name
	}
	if t, ok := r.tools[name]; ok {
		return t
	}
	if len(r.tools) >= r.opts.MaxTools {
		r.overflow.Tools++
		name = OtherGroup
		if t, ok := r.tools[name]; ok {
			return t
		}
	}
	t := &toolStats{}
	r.tools[name] = t
	return t
}

// providerName prefers the sensor's own provider id, which is finer than
// the schema's enum name ("deepseek" where the name is "other").
func providerName(p *oisp.Provider) string {
	switch {
	case p == nil:
		return Unknown
	case p.ID != "":
		return p.ID
	case p.Name != "":
		return p.Name
	}
	return Unknown
}

// modelName is the model's id: in a response, the model as answered.
func modelName(m *oisp.Model, answered bool) string {
	switch {
	case m == nil:
		return Unknown
	case m.ID != "":
		return m.ID
	case !answered && m.Requested != "":
		return m.Requested
	case m.Name != "":
		return m.Name
	}
	return Unknown
}

// appName names the application behind an event: its process name, else
// its executable's base name, else the app object's name.
func appName(ev *event) string {
	if p := ev.Process; p != nil {
		if p.Name != "" {
			return p.Name
		}
		if p.Exe != "" {
			return path.Base(p.Exe)
		}
	}
	if ev.App != nil && ev.App.Name != "" {
		return ev.App.Name
	}
	return Unknown
}

// event is the part of an OISP envelope the report reads; the decoder
// skips the rest (messages, choices, arguments) without keeping it.
type event struct {
	OISPVersion   string         `json:"oisp_version"`
	EventID       string         `json:"event_id"`
	EventType     string         `json:"event_type"`
	TS            string         `json:"ts"`
	Process       *oisp.Process  `json:"process"`
	App           *oisp.App      `json:"app"`
	Data          eventData      `json:"data"`
	RelatedEvents []oisp.Related `json:"related_events"`
}

// envelope is an event whose data is not read.
type envelope struct {
	OISPVersion string `json:"oisp_version"`
	EventID     string `json:"event_id"`
	EventType   string `json:"event_type"`
	TS          string `json:"ts"`
}

// readsData says whether the report reads the data of an event type.
func readsData(eventType string) bool {
	switch eventType {
	case oisp.TypeAIRequest, oisp.TypeAIResponse, oisp.TypeAIEmbedding, oisp.TypeToolCall, oisp.TypeToolResult:
		return true
	}
	return false
}

// eventData holds the fields of the data of ai.request, ai.response,
// ai.embedding, agent.tool_call and agent.tool_result the report reads;
// the field names are the ones those types share.
type eventData struct {
	Provider           *oisp.Provider `json:"provider"`
	Model              *oisp.Model    `json:"model"`
	Streaming          *bool          `json:"streaming"`
	StatusCode         int            `json:"status_code"`
	Success            *bool          `json:"success"`
	Error              *oisp.Error    `json:"error"`
	Usage              *oisp.Usage    `json:"usage"`
	LatencyMS          *int64         `json:"latency_ms"`
	TimeToFirstTokenMS *int64         `json:"time_to_first_token_ms"`
	Tool               *oisp.ToolInfo `json:"tool"`
	InputCount         int            `json:"input_count"`
	EmbeddingCount     int            `json:"embedding_count"`
	TotalTokens        *int           `json:"total_tokens"`
	ConversationID     string         `json:"conversation_id"`
	ToolCallsCount     int            `json:"tool_calls_count"`
}

// recentIDs remembers the last keptWindow event ids of the current input
// kept by Options.Conversation: the events related to them (tool calls,
// results, embeddings) follow them closely, so a window bounds the memory
// without losing them.
type recentIDs struct {
	ids  []string
	next int
	set  map[string]struct{}
}

const keptWindow = 4096

func (k *recentIDs) reset() {
	k.ids, k.next = k.ids[:0], 0
	clear(k.set)
}

func (k *recentIDs) has(id string) bool {
	_, ok := k.set[id]
	return ok
}

func (k *recentIDs) add(id string) {
	if k.has(id) {
		return
	}
	if k.set == nil {
		k.set = map[string]struct{}{}
	}
	if len(k.ids) < keptWindow {
		k.ids = append(k.ids, id)
	} else {
		delete(k.set, k.ids[k.next])
		k.ids[k.next] = id
		k.next = (k.next + 1) % keptWindow
	}
	k.set[id] = struct{}{}
}
