package kafka

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/oisp/oisp-sensor/sensor/capture/ca"
	"github.com/oisp/oisp-sensor/sensor/internal/testutil"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/sink"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// testTopic has three partitions, so that keys spread over them and the
// order per key is a property of the key, not of a single partition.
const testTopic = "oisp-test"

// newCluster starts an in-process Kafka broker (kfake, the franz-go
// project's protocol-level fake) with testTopic.
func newCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(3, testTopic)}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// freePort returns a port nothing listens on now (the kernel's pick for
// :0, released), for a broker that starts later.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// testEvent is event i of flow (no flow id when flow is empty), with a
// body that needs escaping in JSON.
func testEvent(i int, flow string) *oisp.Event {
	ev := &oisp.Event{
		OISPVersion: oisp.Version,
		EventID:     fmt.Sprintf("01JTEST%019d", i),
		EventType:   []string{oisp.TypeAIRequest, oisp.TypeAIResponse, "agent.tool_call"}[i%3],
		TS:          "2026-11-30T12:00:00.000000Z",
		Source:      oisp.Source{Collector: "oisp-sensor"},
		Data: map[string]any{
			"seq":  i,
			"flow": flow,
			"text": "line one\nline \"two\" <b>&</b>\tü",
		},
	}
	if flow != "" {
		ev.Attrs = &oisp.Attrs{FlowID: flow}
	}
	return ev
}

// jsonl is ev as the JSONL sink writes it, without the newline.
func jsonl(t testing.TB, ev *oisp.Event) string {
	t.Helper()
	var b bytes.Buffer
	s := sink.NewJSONL(&b, 0)
	s.Record(ev)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// kcatMessage is one message as kcat -J prints it.
type kcatMessage struct {
	Partition int32    `json:"partition"`
	Offset    int64    `json:"offset"`
	Key       *string  `json:"key"`
	Payload   *string  `json:"payload"`
	Headers   []string `json:"headers"` // name, value, name, value …
}

// header returns the value of header name.
func (m kcatMessage) header(name string) (string, bool) {
	for i := 0; i+1 < len(m.Headers); i += 2 {
		if m.Headers[i] == name {
			return m.Headers[i+1], true
		}
	}
	return "", false
}

// kcatRead reads the whole topic with kcat, an independent client
// (librdkafka), and returns its messages in the order read.
func kcatRead(t testing.TB, brokers string, topic string, extra ...string) []kcatMessage {
	t.Helper()
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skipf("kcat is not installed (apt-get install kcat; .ci/run installs it), the independent Kafka consumer: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{"-C", "-b", brokers, "-t", topic, "-o", "beginning", "-e", "-q", "-J"}, extra...)
	cmd := exec.CommandContext(ctx, "kcat", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %v: %v\n%s", args, err, stderr.String())
	}
	var msgs []kcatMessage
	for line := range strings.SplitSeq(strings.TrimSpace(stdout.String()), "\n") {
		if line == "" {
			continue
		}
		var m kcatMessage
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("kcat printed %q: %v", line, err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// checkDelivered checks that msgs are exactly want (by event id), each
// with the JSONL encoding as its value, the flow id (else the event id)
// as its key, the type and version headers, and each key's events in the
// order recorded.
func checkDelivered(t *testing.T, msgs []kcatMessage, want []*oisp.Event) {
	t.Helper()
	byID := map[string]*oisp.Event{}
	order := map[string]int{} // event id → position recorded within its key
	perKey := map[string]int{}
	for _, ev := range want {
		byID[ev.EventID] = ev
		key := ev.EventID
		if ev.Attrs != nil {
			key = ev.Attrs.FlowID
		}
		order[ev.EventID] = perKey[key]
		perKey[key]++
	}
	if len(msgs) != len(want) {
		t.Fatalf("kcat read %d messages, want %d", len(msgs), len(want))
	}
	seen := map[string]bool{}
	lastPos := map[string]int{}
	partOf := map[string]int32{}
	for _, m := range msgs {
		if m.Payload == nil || m.Key == nil {
			t.Fatalf("message at %d/%d has no key or value", m.Partition, m.Offset)
		}
		var probe struct {
			EventID string `json:"event_id"`
		}
		if err := json.Unmarshal([]byte(*m.Payload), &probe); err != nil {
			t.Fatalf("value is not JSON: %v: %q", err, *m.Payload)
		}
		ev := byID[probe.EventID]
		if ev == nil || seen[probe.EventID] {
			t.Fatalf("unexpected or repeated event %q", probe.EventID)
		}
		seen[probe.EventID] = true
		if got, want := *m.Payload, jsonl(t, ev); got != want {
			t.Errorf("value of %s:\n got %s\nwant %s", ev.EventID, got, want)
		}
		wantKey := ev.EventID
		if ev.Attrs != nil {
			wantKey = ev.Attrs.FlowID
		}
		if *m.Key != wantKey {
			t.Errorf("key of %s = %q, want %q", ev.EventID, *m.Key, wantKey)
		}
		if v, ok := m.header(HeaderEventType); !ok || v != ev.EventType {
			t.Errorf("%s header of %s = %q (present %v), want %q", HeaderEventType, ev.EventID, v, ok, ev.EventType)
		}
		if v, ok := m.header(HeaderVersion); !ok || v != oisp.Version {
			t.Errorf("%s header of %s = %q (present %v), want %q", HeaderVersion, ev.EventID, v, ok, oisp.Version)
		}
		// kcat reads each partition in offset order: within a key (one
		// partition) positions must rise.
		if p, ok := partOf[wantKey]; ok && p != m.Partition {
			t.Errorf("key %q is in partitions %d and %d", wantKey, p, m.Partition)
		}
		partOf[wantKey] = m.Partition
		pos := order[ev.EventID]
		if last, ok := lastPos[wantKey]; ok && pos <= last {
			t.Errorf("key %q: event recorded %d-th read after the %d-th", wantKey, pos, last)
		}
		lastPos[wantKey] = pos
	}
}

// checkCounts checks the exporter's counters.
func checkCounts(t *testing.T, c *stats.Counters, sent, dropped, errs int64) {
	t.Helper()
	got := [3]int64{c.Get(TokenSent), c.Get(TokenDropped), c.Get(TokenErrors)}
	if want := [3]int64{sent, dropped, errs}; got != want {
		t.Errorf("sent, dropped, errors = %v, want %v", got, want)
	}
}

// recordAndClose records n events spread over flows flows, in order, and
// closes e, which must deliver them all; it returns the events.
func recordAndClose(t *testing.T, e *Exporter, n, flows int) []*oisp.Event {
	t.Helper()
	var recorded []*oisp.Event
	for i := range n {
		ev := testEvent(i, fmt.Sprintf("flow-%d", i%flows))
		e.Record(ev)
		recorded = append(recorded, ev)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return recorded
}

// waitFor polls cond until it holds, failing after a generous time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestDeliversToKcat(t *testing.T) {
	c := newCluster(t)
	counters := &stats.Counters{}
	e, err := New(Config{Brokers: c.ListenAddrs(), Topic: testTopic, Stats: counters})
	if err != nil {
		t.Fatal(err)
	}
	// Four flows recorded concurrently (each in order) and events of no
	// flow, keyed by their own id.
	var want []*oisp.Event
	var mu sync.Mutex
	var wg sync.WaitGroup
	for f := range 4 {
		wg.Go(func() {
			flow := fmt.Sprintf("flow-%d", f)
			for i := range 25 {
				ev := testEvent(f*1000+i, flow)
				e.Record(ev)
				mu.Lock()
				want = append(want, ev)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for i := range 10 {
		ev := testEvent(9000+i, "")
		e.Record(ev)
		want = append(want, ev)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checkCounts(t, counters, int64(len(want)), 0, 0)
	checkDelivered(t, kcatRead(t, c.ListenAddrs()[0], testTopic), want)
}

// TestDefaultTopicCreated: with no topic configured the events go to
// DefaultTopic, which the exporter asks the broker to create.
func TestDefaultTopicCreated(t *testing.T) {
	c := newCluster(t, kfake.AllowAutoTopicCreation())
	e, err := New(Config{Brokers: c.ListenAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	want := recordAndClose(t, e, 6, 2)
	checkDelivered(t, kcatRead(t, c.ListenAddrs()[0], DefaultTopic), want)
}

// TestUnencodableEvent: an event JSON cannot carry is counted as an
// error and produces nothing; the events around it go through.
func TestUnencodableEvent(t *testing.T) {
	c := newCluster(t)
	counters := &stats.Counters{}
	e, err := New(Config{Brokers: c.ListenAddrs(), Topic: testTopic, Stats: counters})
	if err != nil {
		t.Fatal(err)
	}
	bad := testEvent(1, "flow")
	bad.Data = map[string]any{"ratio": math.Inf(1)}
	e.Record(bad)
	want := recordAndClose(t, e, 3, 1)
	checkCounts(t, counters, 3, 0, 1)
	checkDelivered(t, kcatRead(t, c.ListenAddrs()[0], testTopic), want)
}

// TestEventNotRetained checks that Record copies what it needs: the
// pipeline reuses an event's memory once Record returns.
func TestEventNotRetained(t *testing.T) {
	c := newCluster(t)
	e, err := New(Config{Brokers: c.ListenAddrs(), Topic: testTopic})
	if err != nil {
		t.Fatal(err)
	}
	var want []*oisp.Event
	ev := &oisp.Event{}
	for i := range 20 {
		*ev = *testEvent(i, "flow-reused")
		e.Record(ev)
		want = append(want, testEvent(i, "flow-reused"))
		ev.EventType, ev.EventID, ev.OISPVersion, ev.Attrs.FlowID = "overwritten", "overwritten", "overwritten", "overwritten"
		ev.Data.(map[string]any)["text"] = "overwritten"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	checkDelivered(t, kcatRead(t, c.ListenAddrs()[0], testTopic), want)
}

// TestBrokerDownAtStart: events recorded while no broker answers wait in
// the buffer up to its bound (the oldest are kept, the rest dropped and
// counted) and are delivered once the broker comes up.
func TestBrokerDownAtStart(t *testing.T) {
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	counters := &stats.Counters{}
	const bound, recorded = 50, 80
	e, err := New(Config{Brokers: []string{addr}, Topic: testTopic, MaxBufferedRecords: bound, Stats: counters})
	if err != nil {
		t.Fatal(err)
	}
	var want []*oisp.Event
	for i := range recorded {
		ev := testEvent(i, fmt.Sprintf("flow-%d", i%3))
		e.Record(ev)
		if i < bound {
			want = append(want, ev)
		}
	}
	checkCounts(t, counters, 0, recorded-bound, 0)
	if got := e.Buffered(); got != bound {
		t.Fatalf("Buffered() = %d with the broker down, want %d", got, bound)
	}

	c := newCluster(t, kfake.Ports(port))
	waitFor(t, "the buffered events to be delivered", func() bool { return counters.Get(TokenSent) == bound })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checkCounts(t, counters, bound, recorded-bound, 0)
	checkDelivered(t, kcatRead(t, c.ListenAddrs()[0], testTopic), want)
}

// TestFullBufferDoesNotBlock: with no broker, Record keeps returning
// (the test would hang otherwise) and every event past the bound is
// dropped and counted; Close with a deadline returns and reports the
// buffered events as lost.
func TestFullBufferDoesNotBlock(t *testing.T) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	counters := &stats.Counters{}
	const bound, recorded = 10, 20000
	e, err := New(Config{Brokers: []string{addr}, MaxBufferedRecords: bound, Stats: counters})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := range recorded / 4 {
					e.Record(testEvent(w*recorded+i, "flow"))
				}
			})
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("Record blocked while the broker is unreachable")
	}
	checkCounts(t, counters, 0, recorded-bound, 0)

	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		closed <- e.Close(ctx)
	}()
	select {
	case err := <-closed:
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%d events not delivered", bound)) {
			t.Errorf("Close = %v, want the %d buffered events reported lost", err, bound)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("Close did not return after its deadline")
	}
	checkCounts(t, counters, 0, recorded, 0)
	// Closed: Record drops and counts.
	e.Record(testEvent(1, "flow"))
	checkCounts(t, counters, 0, recorded+1, 0)
}

// TestByteBound: the byte bound drops like the record bound.
func TestByteBound(t *testing.T) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	counters := &stats.Counters{}
	size := len(jsonl(t, testEvent(0, "flow")))
	e, err := New(Config{Brokers: []string{addr}, MaxBufferedBytes: 5*size + size/2, Stats: counters})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		e.Record(testEvent(i, "flow"))
	}
	if got := e.Buffered(); got < 4 || got > 5 {
		t.Errorf("Buffered() = %d under a bound of 5.5 events' bytes, want 4 or 5 (headers and key count too)", got)
	}
	checkCounts(t, counters, 0, 20-e.Buffered(), 0)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := e.Close(ctx); err == nil {
		t.Error("Close reported no loss with the broker away")
	}
}

// TestCloseWhileBrokerGone: the broker served, then went away; Close with
// a deadline returns and reports what it could not deliver.
func TestCloseWhileBrokerGone(t *testing.T) {
	c := newCluster(t)
	counters := &stats.Counters{}
	e, err := New(Config{Brokers: c.ListenAddrs(), Topic: testTopic, Stats: counters})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		e.Record(testEvent(i, "flow"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	c.Close()
	for i := range 15 {
		e.Record(testEvent(100+i, "flow"))
	}
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		closed <- e.Close(ctx)
	}()
	select {
	case err := <-closed:
		if err == nil || !strings.Contains(err.Error(), "15 events not delivered") {
			t.Errorf("Close = %v, want 15 events reported lost", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("Close did not return after its deadline")
	}
	if got := counters.Get(TokenDropped) + counters.Get(TokenErrors); got != 15 {
		t.Errorf("dropped+errors = %d, want 15", got)
	}
	if got := counters.Get(TokenSent); got != 10 {
		t.Errorf("sent = %d, want 10", got)
	}
}

// tlsCluster starts a broker serving TLS with a certificate of a fresh CA
// (and the other options, SASL logins), and returns the CA file.
func tlsCluster(t *testing.T, opts ...kfake.Opt) (*kfake.Cluster, string) {
	t.Helper()
	authority, err := ca.Create(t.TempDir(), ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := authority.Leaf("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]kfake.Opt{kfake.TLS(&tls.Config{Certificates: []tls.Certificate{*leaf}, MinVersion: tls.VersionTLS12})}, opts...)
	return newCluster(t, opts...), authority.CertPath()
}

// TestTLS: the exporter verifies the broker against the CA file; kcat
// reads the events back over TLS verified the same way.
func TestTLS(t *testing.T) {
	c, caFile := tlsCluster(t)
	counters := &stats.Counters{}
	e, err := New(Config{Brokers: c.ListenAddrs(), Topic: testTopic, CAFile: caFile, Stats: counters})
	if err != nil {
		t.Fatal(err)
	}
	want := recordAndClose(t, e, 12, 2)
	checkCounts(t, counters, 12, 0, 0)
	checkDelivered(t, kcatRead(t, c.ListenAddrs()[0], testTopic,
		"-X", "security.protocol=SSL", "-X", "ssl.ca.location="+caFile), want)
}

// TestTLSUnknownCA: a broker whose certificate the CA file does not
// vouch for gets no events (they fail and are counted).
func TestTLSUnknownCA(t *testing.T) {
	c, _ := tlsCluster(t)
	_, otherCA := tlsCluster(t)
	counters := &stats.Counters{}
	e, err := New(Config{Brokers: c.ListenAddrs(), Topic: testTopic, CAFile: otherCA, Stats: counters, DeliveryTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		e.Record(testEvent(i, "flow"))
	}
	waitFor(t, "the events to fail", func() bool { return counters.Get(TokenErrors) == 3 })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	e.Close(ctx)
	checkCounts(t, counters, 0, 0, 3)
}

// TestSASL logs in with each mechanism over TLS. kfake speaks only
// SaslHandshake v1 and the packaged kcat (librdkafka 2.0) insists on v0,
// so the events are read back with a franz-go consumer logging in the
// same way; the broker refuses any request before the login, so what is
// read proves the login.
func TestSASL(t *testing.T) {
	const user, password = "sensor", "pw-Zq81-never-logged"
	for _, mech := range []string{MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512} {
		t.Run(mech, func(t *testing.T) {
			c, caFile := tlsCluster(t, kfake.EnableSASL(), kfake.Superuser(mech, user, password))
			counters := &stats.Counters{}
			var logs testutil.SyncBuffer
			sasl := SASL{Mechanism: mech, User: user, Password: password}
			e, err := New(Config{
				Brokers: c.ListenAddrs(), Topic: testTopic, CAFile: caFile, SASL: sasl,
				Stats: counters, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})
			if err != nil {
				t.Fatal(err)
			}
			want := recordAndClose(t, e, 12, 2)
			checkCounts(t, counters, 12, 0, 0)
			if strings.Contains(logs.String(), password) {
				t.Errorf("the log carries the password:\n%s", logs.String())
			}
			checkDelivered(t, consumeAll(t, c.ListenAddrs(), caFile, sasl, len(want)), want)
		})
	}
}

// consumeAll reads n records of testTopic with a franz-go consumer, as
// kcatRead would print them.
func consumeAll(t *testing.T, brokers []string, caFile string, s SASL, n int) []kcatMessage {
	t.Helper()
	mech, err := saslMechanism(s)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := tlsConfig(caFile)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(testTopic), kgo.DialTLSConfig(tc), mech)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var msgs []kcatMessage
	for len(msgs) < n {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(msgs), n, err)
		}
		fetches.EachError(func(topic string, p int32, err error) { t.Fatalf("consume %s/%d: %v", topic, p, err) })
		fetches.EachRecord(func(r *kgo.Record) {
			key, value := string(r.Key), string(r.Value)
			m := kcatMessage{Partition: r.Partition, Offset: r.Offset, Key: &key, Payload: &value}
			for _, h := range r.Headers {
				m.Headers = append(m.Headers, h.Key, string(h.Value))
			}
			msgs = append(msgs, m)
		})
	}
	return msgs
}

// TestWrongPassword: a refused login fails the events (counted as errors,
// logged) and neither the log nor Close's error carries the password.
func TestWrongPassword(t *testing.T) {
	const user, wrong = "sensor", "pw-wrong-Kx7-never-logged"
	c, caFile := tlsCluster(t, kfake.EnableSASL(), kfake.Superuser(MechanismSCRAMSHA256, user, "the-right-one"))
	counters := &stats.Counters{}
	var logs testutil.SyncBuffer
	cfg := Config{
		Brokers: c.ListenAddrs(), Topic: testTopic, CAFile: caFile,
		SASL:  SASL{Mechanism: MechanismSCRAMSHA256, User: user, Password: wrong},
		Stats: counters, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		// Without a delivery timeout the client retries the login until
		// Close; with one the events fail and are logged.
		DeliveryTimeout: time.Second,
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		e.Record(testEvent(i, "flow"))
	}
	waitFor(t, "the events to fail", func() bool { return counters.Get(TokenErrors) == 5 })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	closeErr := e.Close(ctx)
	checkCounts(t, counters, 0, 0, 5)
	if !strings.Contains(logs.String(), "could not deliver") || !strings.Contains(logs.String(), "cannot connect to or log in") {
		t.Errorf("the failure was not logged:\n%s", logs.String())
	}
	printed := logs.String() + fmt.Sprint(closeErr) + fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg)
	if strings.Contains(printed, wrong) {
		t.Errorf("the password was printed:\n%s", printed)
	}
	var l bytes.Buffer
	slog.New(slog.NewJSONHandler(&l, nil)).Info("config", "cfg", cfg, "sasl", cfg.SASL)
	if strings.Contains(l.String(), wrong) {
		t.Errorf("the password was logged: %s", l.String())
	}
}

// TestUnreachableBrokerIsLogged: the client retries a broker that is down
// (or refuses the login) quietly; the exporter says so at warn level,
// once per interval rather than per retry.
func TestUnreachableBrokerIsLogged(t *testing.T) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	var logs testutil.SyncBuffer
	e, err := New(Config{Brokers: []string{addr}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.Record(testEvent(1, "flow"))
	waitFor(t, "a warning about the broker", func() bool { return strings.Contains(logs.String(), "cannot connect to or log in to a broker") })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	e.Close(ctx)
	if n := strings.Count(logs.String(), "cannot connect"); n != 1 {
		t.Errorf("%d warnings about the broker within the interval, want 1:\n%s", n, logs.String())
	}
}

func TestConfigErrors(t *testing.T) {
	const password = "pw-in-config-never-printed"
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no brokers", Config{}, "no brokers"},
		{"credentials in address", Config{Brokers: []string{"sensor:" + password + "@127.0.0.1:9092"}}, "carries credentials"},
		{"unknown mechanism", Config{Brokers: []string{"127.0.0.1:9092"}, SASL: SASL{Mechanism: "GSSAPI", User: "u", Password: password}}, "unknown SASL mechanism"},
		{"password without mechanism", Config{Brokers: []string{"127.0.0.1:9092"}, SASL: SASL{User: "u", Password: password}}, "without a mechanism"},
		{"missing CA file", Config{Brokers: []string{"127.0.0.1:9092"}, CAFile: "/nonexistent/ca.pem"}, "read the TLS CA file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New = %v, want an error saying %q", err, c.want)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("the error carries the password: %v", err)
			}
		})
	}
}

// BenchmarkRecord measures Record against a live in-process broker beside
// encoding the same event as a JSONL line (the cost every sink pays).
func BenchmarkRecord(b *testing.B) {
	ev := testEvent(1, "flow-bench")
	b.Run("jsonl", func(b *testing.B) {
		s := sink.NewJSONL(discard{}, 0)
		b.ReportAllocs()
		for b.Loop() {
			s.Record(ev)
		}
	})
	b.Run("kafka", func(b *testing.B) {
		c := newCluster(b)
		counters := &stats.Counters{}
		e, err := New(Config{Brokers: c.ListenAddrs(), Topic: testTopic, Stats: counters, MaxBufferedRecords: 1 << 20, MaxBufferedBytes: 1 << 30})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		e.Record(ev) // connect first
		if err := e.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			e.Record(ev)
		}
		b.StopTimer()
		if err := e.Close(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(counters.Get(TokenDropped)), "dropped")
	})
	// The path every event takes while the broker is away and the buffer
	// is full: reserve, find no room, count.
	b.Run("kafka-full", func(b *testing.B) {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(b)))
		e, err := New(Config{Brokers: []string{addr}, MaxBufferedRecords: 1, Stats: &stats.Counters{}})
		if err != nil {
			b.Fatal(err)
		}
		e.Record(ev)
		b.ReportAllocs()
		for b.Loop() {
			e.Record(ev)
		}
		b.StopTimer()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		e.Close(ctx)
	})
}

// discard is io.Discard without its ReaderFrom (irrelevant here).
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// slowRecorder is a stats.Recorder that takes its time over drop and error
// counts (a contended or remote one): it holds each until release.
type slowRecorder struct{ release chan struct{} }

func (r slowRecorder) Count(token string, _ int64) {
	if token == TokenDropped || token == TokenErrors {
		select {
		case <-r.release:
		case <-time.After(10 * time.Second):
		}
	}
}

// TestCloseCountsLossWithSlowStats: an event failed by Close is reported
// in Close's error even when the stats recorder is slow to count it.
func TestCloseCountsLossWithSlowStats(t *testing.T) {
	rec := slowRecorder{release: make(chan struct{})}
	e, err := New(Config{Brokers: []string{"127.0.0.1:" + strconv.Itoa(freePort(t))}, Stats: rec})
	if err != nil {
		t.Fatal(err)
	}
	e.Record(testEvent(0, "flow-a"))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = e.Close(ctx)
	close(rec.release)
	if err == nil {
		t.Fatal("Close reported no loss although the broker was down and its one event was never delivered")
	}
}

// stallingData is event data whose encoding waits until released and then
// fails: it holds a Record between reserving a place and dropping it.
type stallingData struct {
	entered, release chan struct{}
}

func (d stallingData) MarshalJSON() ([]byte, error) {
	close(d.entered)
	<-d.release
	return nil, errors.New("data that cannot be encoded")
}

// TestCloseCountsRecordDroppedAsItStarts: an event whose Record began
// before Close and was dropped after it started is part of Close's loss.
// It used to be counted as an error but missing from Close's error.
func TestCloseCountsRecordDroppedAsItStarts(t *testing.T) {
	e, err := New(Config{Brokers: []string{"127.0.0.1:" + strconv.Itoa(freePort(t))}})
	if err != nil {
		t.Fatal(err)
	}
	data := stallingData{entered: make(chan struct{}), release: make(chan struct{})}
	ev := testEvent(0, "flow-a")
	ev.Data = data
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		e.Record(ev)
	}()
	<-data.entered
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		closed <- e.Close(ctx)
	}()
	for !e.closing.Load() {
		time.Sleep(time.Millisecond)
	}
	close(data.release)
	<-recorded
	if err := <-closed; err == nil || !strings.Contains(err.Error(), "1 events") {
		t.Fatalf("Close = %v, want the one event dropped while it started", err)
	}
}
