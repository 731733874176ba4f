package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/oisp/oisp-sensor/sensor/capture/loopback"
)

// recordThroughProxy runs record with the capture proxy and extra flags,
// replays a streamed chat completion through it, stops it and returns the
// JSONL output's lines and the status output.
func recordThroughProxy(t *testing.T, extra ...string) (lines [][]byte, status string) {
	t.Helper()
	srv, rec := upstream(t, "openai/lcg-testclient-createchatcompletionstream", loopback.H2)
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	out := filepath.Join(dir, "events.jsonl")
	args := append([]string{"record", "--proxy", "127.0.0.1:0", "--no-socket", "--ebpf", "off",
		"--ca-dir", caDir, "--upstream-ca", srv.CAFile, "--resolve", "api.openai.com:443:" + srv.Addr,
		"--output", out, "--summary-every", "0"}, extra...)
	cmd := start(t, args...)
	addr := waitFor(t, cmd.stderr, proxyLine, cmd.done)
	replayThrough(t, proxiedClient(t, addr, caDir), rec, secret)
	// Both events are decoded once the exchange is: wait for them before
	// stopping, so that the exporters are fed before they drain.
	deadline := time.Now().Add(30 * time.Second)
	for {
		raw, _ := os.ReadFile(out)
		if bytes.Count(raw, []byte("\n")) >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := cmd.stop(t); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, cmd.stderr.String())
	}
	readEvents(t, out) // validates every line
	raw, _ := os.ReadFile(out)
	return bytes.Split(bytes.TrimSuffix(raw, []byte("\n")), []byte("\n")), cmd.stderr.String()
}

// TestRecordKafka: with --kafka-brokers every event record writes to its
// file is also published, byte for byte, to a Kafka broker (franz-go's
// in-process kfake cluster, read back with a consumer), keyed by flow,
// and the summary counts them.
func TestRecordKafka(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "ai-events"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	broker := c.ListenAddrs()[0]
	lines, status := recordThroughProxy(t, "--kafka-brokers", broker, "--kafka-topic", "ai-events")
	for _, want := range []string{"events also go to Kafka topic ai-events via " + broker, "kafka: 2 sent, 0 dropped"} {
		if !strings.Contains(status, want) {
			t.Errorf("status output lacks %q:\n%s", want, status)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics("ai-events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < len(lines) && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	if len(got) != len(lines) {
		t.Fatalf("%d records on the topic, %d events in the file", len(got), len(lines))
	}
	flowKey := regexp.MustCompile(`"flow.id":"([^"]+)"`)
	for i, r := range got {
		if !bytes.Equal(r.Value, lines[i]) {
			t.Errorf("record %d differs from the file's line:\n%s\n%s", i, r.Value, lines[i])
		}
		if m := flowKey.FindSubmatch(lines[i]); m == nil || string(r.Key) != string(m[1]) {
			t.Errorf("record %d key %q, want the event's flow id", i, r.Key)
		}
	}
	if strings.Contains(status, secret) {
		t.Error("the API key reached the status output")
	}
}

// TestRecordKafkaNeedsPassword: a SASL login without a password is refused
// before anything starts, naming where the password goes.
func TestRecordKafkaNeedsPassword(t *testing.T) {
	t.Setenv(kafkaPasswordEnv, "")
	cmd := start(t, "record", "--proxy", "127.0.0.1:0", "--no-socket", "--ebpf", "off", "-o", filepath.Join(t.TempDir(), "e.jsonl"),
		"--kafka-brokers", "127.0.0.1:9", "--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-user", "sensor")
	select {
	case code := <-cmd.done:
		cmd.done <- code
		if code != 1 || !strings.Contains(cmd.stderr.String(), kafkaPasswordEnv) {
			t.Errorf("exit %d, stderr:\n%s", code, cmd.stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("record did not refuse")
	}
}
