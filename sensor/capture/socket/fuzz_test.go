//go:build unix

package socket

import (
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/stats"
)

func quietServer() *Server {
	return &Server{
		cfg: ServerConfig{AllowedUIDs: []int{os.Getuid()}, MaxFrame: DefaultMaxFrame, CreditWindow: 1 << 16,
			LegacyMaxLine: 4096, Name: "fuzz"},
		log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		st:  &stats.Counters{},
	}
}

// socketPair returns two connected Unix stream sockets.
func socketPair(t *testing.T) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	conv := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "pair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c.(*net.UnixConn)
	}
	return conv(fds[0]), conv(fds[1])
}

// FuzzServerConn feeds arbitrary bytes after a valid HELLO to a real server
// connection: it must neither panic nor hang, and every flow it opened must
// be closed when the connection ends.
func FuzzServerConn(f *testing.F) {
	v := loadVectors(f)
	hello, _ := AppendFrame(nil, &Hello{Version: 1, MaxFrame: MinMaxFrame, Name: "fuzz"})
	var all []byte
	for _, vec := range v.Frames {
		raw, _ := hex.DecodeString(vec.Hex)
		if vec.Type == "HELLO" || vec.Type == "CREDIT" {
			continue
		}
		f.Add(raw)
		all = append(all, raw...)
	}
	f.Add(all)
	f.Add([]byte(`{"kind":"SslWrite","pid":1,"data":"QUJD","metadata":{"comm":"a","exe":"b","uid":0}}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := socketPair(t)
		defer b.Close()
		rec := newRecorder()
		c := &serverConn{srv: quietServer(), nc: a, h: rec, id: 1}
		done := make(chan struct{})
		go func() {
			c.serve()
			close(done)
		}()
		input := data
		if len(data) == 0 || data[0] != '{' {
			input = append(append([]byte(nil), hello...), data...)
		}
		go func() {
			b.Write(input)
			b.CloseWrite()
		}()
		io.Copy(io.Discard, b)
		<-done
		for _, id := range rec.Order {
			if _, ok := rec.Closes[id]; !ok {
				t.Fatalf("flow %s left open", id)
			}
		}
	})
}
