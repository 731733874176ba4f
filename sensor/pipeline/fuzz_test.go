package pipeline

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/capture/replay"
	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/provider"
	"github.com/oisp/oisp-sensor/spec"
)

// fuzzSecret is a credential the fuzz target adds to every request's
// header block: it must never reach an event.
const fuzzSecret = "sk-oisp-fuzz-5ecret-0123456789abcdef"

// fuzzSeeds returns the two directions of up to perProvider flows of every
// provider's fixtures, as the replay source synthesizes them.
func fuzzSeeds(tb testing.TB, perProvider int) [][2][]byte {
	tb.Helper()
	root := filepath.Join("..", "..", "fixtures")
	providers, err := os.ReadDir(root)
	if err != nil {
		tb.Fatal(err)
	}
	var out [][2][]byte
	for _, p := range providers {
		if !p.IsDir() {
			continue
		}
		cases, _ := os.ReadDir(filepath.Join(root, p.Name()))
		n := 0
		for _, c := range cases {
			if n == perProvider {
				break
			}
			rec, err := cassette.ReadFile(filepath.Join(root, p.Name(), c.Name(), "cassette.yaml"))
			if err != nil {
				continue
			}
			flows, err := replay.New(rec, replay.Options{IDPrefix: c.Name()}).Plan()
			if err != nil || len(flows) == 0 {
				continue
			}
			var client, server []byte
			for _, ch := range flows[0].Chunks {
				if ch.Dir == flow.ClientToServer {
					client = append(client, ch.Data...)
				} else {
					server = append(server, ch.Data...)
				}
			}
			out = append(out, [2][]byte{client, server})
			n++
		}
	}
	if len(out) == 0 {
		tb.Fatal("no fixture flows found for the fuzz seeds")
	}
	return out
}

// withSecret adds an Authorization header with fuzzSecret after the first
// line of a request; ok is false when the first line is not a request line
// (the header would then not be a header).
func withSecret(client []byte) (_ []byte, ok bool) {
	nl := bytes.IndexByte(client, '\n')
	if nl < 0 {
		return client, false
	}
	line := bytes.TrimRight(client[:nl], "\r")
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || !bytes.HasSuffix(line, []byte(" HTTP/1.1")) || bytes.IndexByte(line[sp+1:], ' ') <= 0 {
		return client, false
	}
	out := slices.Concat(client[:nl+1], []byte("Authorization: Bearer "+fuzzSecret+"\r\n"), client[nl+1:])
	return out, true
}

// FuzzPipeline feeds one HTTP/1.1 flow through the whole pipeline, every
// provider decoder included, with both directions cut at fuzzer-chosen
// points and interleaved, and checks what comes out: no panic, every event
// valid against the OISP schema, and the credential in the request headers
// in no event. Seeds are the first flows of every provider's fixtures.
func FuzzPipeline(f *testing.F) {
	for _, s := range fuzzSeeds(f, 3) {
		f.Add(s[0], s[1], uint64(len(s[0])))
	}
	v, err := spec.NewValidator()
	if err != nil {
		f.Fatal(err)
	}
	reg, err := provider.LoadRegistry(provider.RegistryOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, client, server []byte, seed uint64) {
		client, secretInHeader := withSecret(client)
		if bytes.Count(client, []byte(fuzzSecret)) != 1 || bytes.Contains(server, []byte(fuzzSecret)) {
			secretInHeader = false // the input carries it elsewhere too
		}
		rng := rand.New(rand.NewPCG(seed, 2))
		mem := &memory{}
		p := New(Config{
			Registry: reg,
			Builder:  oisp.NewBuilder(oisp.BuilderOptions{Host: &oisp.Host{OS: "linux", Arch: "x86_64"}}),
			Out:      mem,
			Content:  ContentFull,
		})
		info := &flow.Info{ID: "fuzz", Transport: flow.TCP, TLS: true, SNI: "api.openai.com", ALPN: "http/1.1",
			Process: flow.Process{PID: 7, UID: 1000, Exe: "/usr/bin/agent", Name: "agent"},
			Method:  flow.CaptureEBPFUprobe, Remote: netip.MustParseAddrPort("192.0.2.1:443"), Started: t0}
		p.Open(info)
		at := t0
		for len(client)+len(server) > 0 {
			dir, rest := flow.ClientToServer, &client
			if len(client) == 0 || len(server) > 0 && rng.IntN(3) == 0 {
				dir, rest = flow.ServerToClient, &server
			}
			n := min(len(*rest), 1+rng.IntN(max(1, len(*rest))))
			at = at.Add(1e6)
			p.Data("fuzz", flow.Chunk{Dir: dir, Data: (*rest)[:n], At: at})
			*rest = (*rest)[n:]
		}
		p.Close("fuzz", flow.CloseInfo{At: at.Add(1e6), Reason: "eof"})
		for i, ev := range mem.events {
			if err := v.ValidateValue(ev); err != nil {
				t.Fatalf("event %d (%s) is not valid OISP: %v", i, ev.EventType, err)
			}
			if secretInHeader {
				b, err := json.Marshal(ev)
				if err != nil {
					t.Fatalf("event %d (%s): %v", i, ev.EventType, err)
				}
				if bytes.Contains(b, []byte(fuzzSecret)) {
					t.Fatalf("event %d (%s) carries the request's credential: %s", i, ev.EventType, b)
				}
			}
		}
	})
}
