package oisp

import (
	"crypto/rand"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// Collector is the `source.collector` of every event this sensor emits.
const Collector = "oisp-sensor"

// TimeLayout is RFC 3339 in UTC with microseconds, as OISP recommends.
const TimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// FormatTime renders t as an OISP timestamp.
func FormatTime(t time.Time) string {
	var buf [len(TimeLayout) + 8]byte
	return string(AppendTime(buf[:0], t))
}

// AppendTime appends t as an OISP timestamp (TimeLayout, in UTC). Every
// event carries one, so the fixed layout is written two digits at a time,
// the date worked out from the Unix day, rather than interpreted by
// time.Time.AppendFormat (or taken from Date and Clock, which cost more
// than the rest).
func AppendTime(b []byte, t time.Time) []byte {
	sec := t.Unix()
	if sec < 0 || sec >= endOfYear9999 {
		return t.UTC().AppendFormat(b, TimeLayout)
	}
	// The civil date of a day count, with years starting on March 1st so
	// that the leap day ends them (after H. Hinnant's days_from_civil
	// notes); unsigned, as everything here is at or after 1970.
	days, clock := uint64(sec)/86400, uint64(sec)%86400
	z := days + 719468 // days since 0000-03-01
	era := z / 146097
	dayOfEra := z - era*146097
	yearOfEra := (dayOfEra - dayOfEra/1460 + dayOfEra/36524 - dayOfEra/146096) / 365
	dayOfYear := dayOfEra - (365*yearOfEra + yearOfEra/4 - yearOfEra/100)
	monthFromMarch := (5*dayOfYear + 2) / 153
	day := dayOfYear - (153*monthFromMarch+2)/5 + 1
	month := monthFromMarch + 3
	year := yearOfEra + era*400
	if month > 12 {
		month -= 12
		year++
	}
	micros := uint64(t.Nanosecond()) / 1000
	var d [len("2006-01-02T15:04:05.000000Z")]byte
	putTwoDigits(d[0:], year/100)
	putTwoDigits(d[2:], year%100)
	d[4] = '-'
	putTwoDigits(d[5:], month)
	d[7] = '-'
	putTwoDigits(d[8:], day)
	d[10] = 'T'
	putTwoDigits(d[11:], clock/3600)
	d[13] = ':'
	putTwoDigits(d[14:], clock/60%60)
	d[16] = ':'
	putTwoDigits(d[17:], clock%60)
	d[19] = '.'
	putTwoDigits(d[20:], micros/10000)
	putTwoDigits(d[22:], micros/100%100)
	putTwoDigits(d[24:], micros%100)
	d[26] = 'Z'
	return append(b, d[:]...)
}

// endOfYear9999 is the Unix time of 10000-01-01, where four year digits
// end.
const endOfYear9999 = 253402300800

// putTwoDigits writes v, under 100, as two digits at the start of d.
func putTwoDigits(d []byte, v uint64) {
	const pairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
		"404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"
	d[0], d[1] = pairs[2*v], pairs[2*v+1]
}

// Builder fills envelopes. It is safe for concurrent use.
type Builder struct {
	host    Host
	version string

	// hostRef is the host every event points at (events share it; it is
	// never modified after NewBuilder).
	hostRef *Host
	// confidence is the confidence every event starts with (high, full),
	// shared and never modified like the host.
	confidence Confidence

	mu      sync.Mutex
	entropy *ulid.MonotonicEntropy
	id      ulid.ULID // scratch for NewID, so the id does not escape
}

// BuilderOptions configure a Builder.
type BuilderOptions struct {
	// CollectorVersion is the sensor's version string.
	CollectorVersion string
	// Host overrides the detected host (tests set a fixed one).
	Host *Host
	// Entropy overrides the ULID entropy source (tests make ids
	// reproducible); default crypto/rand, monotonic within a millisecond.
	Entropy io.Reader
}

// NewBuilder returns a builder for this machine.
func NewBuilder(opt BuilderOptions) *Builder {
	b := &Builder{version: opt.CollectorVersion, confidence: Confidence{Level: LevelHigh, Completeness: CompleteFull}}
	if opt.Host != nil {
		b.host = *opt.Host
	} else {
		b.host = DetectHost()
	}
	src := opt.Entropy
	if src == nil {
		src = rand.Reader
	}
	b.entropy = ulid.Monotonic(src, 0)
	h := b.host
	b.hostRef = &h
	return b
}

// DetectHost describes the machine the sensor runs on.
func DetectHost() Host {
	h := Host{OS: OSName(runtime.GOOS), Arch: ArchName(runtime.GOARCH)}
	if name, err := os.Hostname(); err == nil {
		h.Hostname = name
	}
	return h
}

// OSName maps GOOS onto the schema's host.os enum.
func OSName(goos string) string {
	switch goos {
	case "linux", "darwin", "windows", "freebsd":
		return goos
	}
	return "other"
}

// ArchName maps GOARCH onto the schema's host.arch enum.
func ArchName(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "arm":
		return "arm"
	case "386":
		return "i686"
	}
	return "other"
}

// NewID returns a fresh ULID.
func (b *Builder) NewID(at time.Time) string {
	return b.PrefixedID("", at)
}

// PrefixedID returns prefix followed by a fresh ULID, built as one string
// (ids such as "req_…" are made per event).
func (b *Builder) PrefixedID(prefix string, at time.Time) string {
	var buf [64]byte
	return string(b.appendID(buf[:0], prefix, at))
}

// appendID appends prefix and a fresh ULID for time at to out.
func (b *Builder) appendID(out []byte, prefix string, at time.Time) []byte {
	ms := ulid.Timestamp(at)
	out = append(out, prefix...)
	b.mu.Lock()
	// ulid.New, without its result escaping to the heap through the
	// entropy interface.
	if err := b.id.SetTime(ms); err != nil {
		b.mu.Unlock()
		panic(err)
	}
	if err := b.entropy.MonotonicRead(ms, b.id[6:]); err != nil {
		b.mu.Unlock()
		panic(err)
	}
	id := b.id
	b.mu.Unlock()
	n := len(out)
	out = append(out, make([]byte, ulid.EncodedSize)...)
	if err := id.MarshalTextTo(out[n:]); err != nil {
		panic(err)
	}
	return out
}

// New returns an event of the given type at time at with the builder's host
// and collector filled in, and a high, full confidence shared with other
// events. The caller sets Process, its own Confidence and related events.
func (b *Builder) New(eventType string, at time.Time, method string, data any) *Event {
	ev := new(Event)
	b.Init(ev, eventType, at, method, data)
	return ev
}

// Init fills *ev as New fills the event it returns, for callers that keep
// several events in one allocation. *ev must be the zero Event (a new
// one): only the fields the builder sets are written.
func (b *Builder) Init(ev *Event, eventType string, at time.Time, method string, data any) {
	b.InitWithID("", nil, method, Stamp{Event: ev, Type: eventType, At: at, Data: data})
}

// Stamp is an event for InitWithID to fill: its type, time and data.
type Stamp struct {
	Event *Event
	Type  string
	At    time.Time
	Data  any
}

// InitWithID fills the events of stamps in turn as Init would, and returns
// prefix followed by a fresh ULID, made just before the first event's own
// id (as PrefixedID then Init would), when prefix is not empty, and extra
// as a string. The ids, the events' ids and timestamps and extra share one
// string: the events of an exchange (an ai.request with its request_id and
// conversation_id, and its ai.response) cost one allocation for all of
// them.
func (b *Builder) InitWithID(prefix string, extra []byte, method string, stamps ...Stamp) (id, extraString string) {
	if len(stamps) == 0 {
		return "", string(extra)
	}
	// Room for the id, eight events and extra on the stack; more are
	// written to a buffer of the size they need.
	const stampLen = ulid.EncodedSize + len(TimeLayout) + 8
	var buf [64 + 8*stampLen + 32]byte
	out := buf[:0]
	if need := len(prefix) + ulid.EncodedSize + len(stamps)*stampLen + len(extra); need > len(buf) {
		out = make([]byte, 0, need)
	}
	// ends[i] is where the timestamp of stamps[i] ends in out.
	var endsBuf [4]int
	ends := endsBuf[:0]
	for i := range stamps {
		at := stamps[i].At
		if at.IsZero() {
			at = time.Now()
		}
		if i == 0 && prefix != "" {
			out = b.appendID(out, prefix, at)
		}
		out = AppendTime(b.appendID(out, "", at), at)
		ends = append(ends, len(out))
	}
	out = append(out, extra...)
	all := string(out)
	idLen := len(prefix)
	if prefix != "" {
		idLen += ulid.EncodedSize
	}
	start := idLen
	for i, st := range stamps {
		ev := st.Event
		// Field by field rather than *ev = Event{…}: assigning a whole
		// Event to the heap copies all of it, with a write barrier on each
		// of its pointer words while the collector marks, to set a third
		// of them.
		ev.OISPVersion = Version
		ev.EventID = all[start : start+ulid.EncodedSize]
		ev.EventType = st.Type
		ev.TS = all[start+ulid.EncodedSize : ends[i]]
		ev.Host = b.hostRef
		ev.Source.Collector = Collector
		ev.Source.CollectorVersion = b.version
		ev.Source.CaptureMethod = method
		ev.Confidence = &b.confidence
		ev.Data = st.Data
		start = ends[i]
	}
	return all[:idLen], all[start:]
}
