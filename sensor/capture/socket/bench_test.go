package socket

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/flow"
)

type countingHandler struct{ n atomic.Int64 }

func (c *countingHandler) Open(*flow.Info)              {}
func (c *countingHandler) Data(_ string, ch flow.Chunk) { c.n.Add(int64(len(ch.Data))) }
func (c *countingHandler) Close(string, flow.CloseInfo) {}

func benchServer(b *testing.B) (string, *countingHandler) {
	path := filepath.Join(b.TempDir(), "s.sock")
	if len(path) > 100 {
		path = filepath.Join("/tmp", fmt.Sprintf("oisp-bench-%d.sock", time.Now().UnixNano()))
	}
	srv, err := Listen(ServerConfig{Path: path, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	h := &countingHandler{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		srv.Run(ctx, h)
		close(done)
	}()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	return path, h
}

func waitBytes(b *testing.B, h *countingHandler, n int64) {
	for deadline := time.Now().Add(30 * time.Second); h.n.Load() < n; time.Sleep(50 * time.Microsecond) {
		if time.Now().After(deadline) {
			b.Fatalf("handler got %d of %d bytes", h.n.Load(), n)
		}
	}
}

// BenchmarkTransport compares carrying 16 KiB plaintext chunks from a
// capture client to the sensor's handler with the binary protocol
// (socket.Client) and with the upstream NDJSON+base64 lines.
func BenchmarkTransport(b *testing.B) {
	chunk := bytes.Repeat([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n"), 16<<10/52)
	b.Run("binary", func(b *testing.B) {
		path, h := benchServer(b)
		c := NewClient(ClientConfig{Path: path, QueueBytes: 64 << 20,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go c.Run(ctx)
		for !c.Stats().Connected {
			time.Sleep(time.Millisecond)
		}
		c.Open(&flow.Info{ID: "f"})
		b.SetBytes(int64(len(chunk)))
		b.ResetTimer()
		var sent int64
		for b.Loop() {
			for c.Stats().QueuedBytes > 32<<20 {
				time.Sleep(20 * time.Microsecond)
			}
			c.Data("f", flow.Chunk{Data: chunk})
			sent += int64(len(chunk))
		}
		waitBytes(b, h, sent)
		if d := c.Stats().DroppedBytes; d != 0 {
			b.Fatalf("dropped %d", d)
		}
	})
	b.Run("legacy-ndjson", func(b *testing.B) {
		path, h := benchServer(b)
		conn, err := net.Dial("unix", path)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		b.SetBytes(int64(len(chunk)))
		b.ResetTimer()
		var sent int64
		for b.Loop() {
			line := `{"id":"0123456789abcdef0123456789abcdef","timestamp_ns":1703680000000000000,"kind":"SslRead","pid":1,"data":"` +
				base64.StdEncoding.EncodeToString(chunk) + `","metadata":{"comm":"x","exe":"\/x","uid":0},"remote_host":"api.openai.com","remote_port":443}` + "\n"
			if _, err := io.WriteString(conn, line); err != nil {
				b.Fatal(err)
			}
			sent += int64(len(chunk))
		}
		waitBytes(b, h, sent)
	})
}
