package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/capture/socket"
	"github.com/oisp/oisp-sensor/sensor/flow"
)

// TestEmitToExtensionSocket runs the path of `oisp-sensor proxy --emit
// unix:PATH`: proxy flows go through socket.Client over the binary wire
// protocol to a socket.Server, exactly as the macOS extension's would.
func TestEmitToExtensionSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "oisp")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "s.sock")
	srv, err := socket.Listen(socket.ServerConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	sensor := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srvDone := make(chan struct{})
	go func() {
		srv.Run(ctx, sensor)
		close(srvDone)
	}()
	client := socket.NewClient(socket.ClientConfig{Path: path, Name: "oisp-sensor proxy (test)"})
	clientDone := make(chan struct{})
	go func() {
		client.Run(ctx)
		close(clientDone)
	}()

	w := newWorld(t)
	w.serveTLS(t, apiHost, http.HandlerFunc(echoChat))
	w.handler = client
	w.start(t, Config{})
	// Keep-alive: the connection must outlive the /proc scan that finds
	// the client's pid (a sub-millisecond loopback exchange may not); it
	// is closed only once the flow has opened.
	c := w.client("h2", true)
	resp, err := c.Post("https://"+apiHost+"/v1/chat/completions", "application/json", strings.NewReader(`{"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	// The flow opens once its process is attributed; closing the
	// connection before that could beat the /proc scan under load.
	sensor.WaitFor(t, "the flow to open at the sensor", func() bool { return len(sensor.Order) > 0 })
	c.CloseIdleConnections()

	ids := sensor.WaitClosed(t, 1)
	info := sensor.Infos[ids[0]]
	if info.Method != flow.CaptureMITMProxy || info.SNI != apiHost || info.ALPN != "h2" || !info.TLS ||
		info.RemotePort != 443 || info.Transport != flow.TCP {
		t.Errorf("info after the socket %+v", info)
	}
	if runtime.GOOS == "linux" && info.Process.PID != os.Getpid() {
		t.Errorf("process lost on the way: %+v", info.Process)
	}
	c2s := sensor.Bytes(ids[0], flow.ClientToServer, 0)
	if !bytes.HasPrefix(c2s, []byte("PRI * HTTP/2.0")) || !bytes.Contains(c2s, []byte(`{"stream":true}`)) {
		t.Errorf("client bytes after the socket: %q", c2s[:min(len(c2s), 40)])
	}
	if s := client.Stats(); s.DroppedBytes != 0 || s.SentBytes == 0 {
		t.Errorf("client stats %+v", s)
	}
	cancel()
	select {
	case <-srvDone:
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
	}
	<-clientDone
}
