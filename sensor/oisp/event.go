// Package oisp owns the OISP v0.1 event model: the envelope, the typed `data`
// of every event type this sensor emits, the builder that fills the envelope
// (ids, timestamps, host, source, confidence), and normalisation of provider
// vocabulary to the schema's enums. Every value it produces serialises
// without nulls.
package oisp

// Version is the OISP version this sensor emits.
const Version = "0.1"

// Event types emitted by the sensor.
const (
	TypeAIRequest      = "ai.request"
	TypeAIResponse     = "ai.response"
	TypeAIStreamChunk  = "ai.streaming_chunk"
	TypeAIEmbedding    = "ai.embedding"
	TypeToolCall       = "agent.tool_call"
	TypeToolResult     = "agent.tool_result"
	TypeProcessExec    = "process.exec"
	TypeProcessExit    = "process.exit"
	TypeProcessFork    = "process.fork"
	TypeNetworkConnect = "network.connect"
	TypeNetworkFlow    = "network.flow"
	TypeFileOpen       = "file.open"
	TypeFileWrite      = "file.write"
)

// Event is one OISP envelope. Data holds one of the *Data types of this
// package (or any JSON object for types without a Go type). Host,
// Confidence, Process, Actor and Attrs are usually shared with other
// events (a builder's host, an exchange's confidence, a flow's process):
// point them at a value of their own rather than write through them.
type Event struct {
	OISPVersion   string         `json:"oisp_version"`
	EventID       string         `json:"event_id"`
	EventType     string         `json:"event_type"`
	TS            string         `json:"ts"`
	TSMono        int64          `json:"ts_mono,omitempty"`
	Host          *Host          `json:"host,omitempty"`
	Actor         *Actor         `json:"actor,omitempty"`
	Process       *Process       `json:"process,omitempty"`
	App           *App           `json:"app,omitempty"`
	Source        Source         `json:"source"`
	Confidence    *Confidence    `json:"confidence,omitempty"` // never nil in an event a Builder made
	Data          any            `json:"data,omitempty"`
	Attrs         *Attrs         `json:"attrs,omitempty"`
	Ext           map[string]any `json:"ext,omitempty"`
	RelatedEvents []Related      `json:"related_events,omitempty"`
	TraceContext  *TraceContext  `json:"trace_context,omitempty"`
}

// Attrs are the sensor's own attributes of an event (the schema's open
// `attrs` object). They are fields rather than a map because every event
// of a flow carries the same few: one small value per flow instead of a
// map, its table and a boxed value.
type Attrs struct {
	// FlowID names the flow that carried the event.
	FlowID string `json:"flow.id"`
}

// Host is the common host object.
type Host struct {
	Hostname      string `json:"hostname,omitempty"`
	DeviceID      string `json:"device_id,omitempty"`
	OS            string `json:"os,omitempty"`
	OSVersion     string `json:"os_version,omitempty"`
	KernelVersion string `json:"kernel_version,omitempty"`
	Arch          string `json:"arch,omitempty"`
}

// Actor is the common actor object.
type Actor struct {
	UID  *int   `json:"uid,omitempty"`
	User string `json:"user,omitempty"`
}

// Process is the common process object.
type Process struct {
	PID         int      `json:"pid,omitempty"`
	PPID        int      `json:"ppid,omitempty"`
	Exe         string   `json:"exe,omitempty"`
	Name        string   `json:"name,omitempty"`
	Cmdline     string   `json:"cmdline,omitempty"`
	CmdlineArgs []string `json:"cmdline_args,omitempty"`
	Cwd         string   `json:"cwd,omitempty"`
	BundleID    string   `json:"bundle_id,omitempty"`
	ContainerID string   `json:"container_id,omitempty"`
	Cgroup      string   `json:"cgroup,omitempty"`
}

// App is the common app object.
type App struct {
	AppID    string `json:"app_id,omitempty"`
	Name     string `json:"name,omitempty"`
	Vendor   string `json:"vendor,omitempty"`
	BundleID string `json:"bundle_id,omitempty"`
	Category string `json:"category,omitempty"`
	Tier     string `json:"tier,omitempty"`
	IsAIApp  *bool  `json:"is_ai_app,omitempty"`
	Type     string `json:"type,omitempty"`
}

// Source says which collector produced the event and how.
type Source struct {
	Collector        string `json:"collector"`
	CollectorVersion string `json:"collector_version,omitempty"`
	CaptureMethod    string `json:"capture_method,omitempty"`
	CapturePoint     string `json:"capture_point,omitempty"`
	SensorHost       string `json:"sensor_host,omitempty"`
}

// Confidence levels and completeness values (schema enums).
const (
	LevelHigh     = "high"
	LevelMedium   = "medium"
	LevelLow      = "low"
	LevelInferred = "inferred"

	CompleteFull     = "full"
	CompletePartial  = "partial"
	CompleteMetadata = "metadata_only"
	CompleteRedacted = "redacted"
)

// Confidence is the common confidence object.
type Confidence struct {
	Level              string   `json:"level"`
	Completeness       string   `json:"completeness"`
	Reasons            []string `json:"reasons,omitempty"`
	Missing            []string `json:"missing,omitempty"`
	Limitations        []string `json:"limitations,omitempty"`
	ProcessAttribution string   `json:"process_attribution,omitempty"`
	ContentSource      string   `json:"content_source,omitempty"`
	AIDetectionMethod  string   `json:"ai_detection_method,omitempty"`
	RedactionApplied   *bool    `json:"redaction_applied,omitempty"`
	RedactionProfile   string   `json:"redaction_profile,omitempty"`
}

// Relationship values for related_events.
const (
	RelParent   = "parent"
	RelChild    = "child"
	RelCausedBy = "caused_by"
	RelCauses   = "causes"
	RelRelated  = "related"
)

// Related links an event to another.
type Related struct {
	EventID      string `json:"event_id"`
	Relationship string `json:"relationship"`
}

// TraceContext is the W3C trace context (lowercase hex).
type TraceContext struct {
	TraceID string `json:"trace_id,omitempty"`
	SpanID  string `json:"span_id,omitempty"`
}
