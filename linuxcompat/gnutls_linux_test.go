//go:build linux && amd64

package linuxcompat

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestCaptureGnuTLS: gnutls-cli (libgnutls gnutls_record_send/recv) speaking
// HTTP/1.1 by hand. Skips when gnutls-bin is not installed.
func TestCaptureGnuTLS(t *testing.T) {
	cli := needTool(t, "gnutls-cli")
	_, rec := startSource(t, Config{})
	srv := newTLSServer(t, false)
	u, _ := url.Parse(srv.URL)
	body := "question=gnutls"
	req := fmt.Sprintf("POST /gnutls HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", u.Host, len(body), body)

	cmd := exec.Command(cli, "--x509cafile", srv.caFile, "-p", u.Port(), u.Hostname())
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// Wait for the handshake, then send the request and read until the
	// response body arrives.
	rd := bufio.NewReader(stdout)
	var all bytes.Buffer
	deadline := time.Now().Add(20 * time.Second)
	sent := false
	for time.Now().Before(deadline) {
		line, err := rd.ReadString('\n')
		all.WriteString(line)
		if !sent && strings.Contains(line, "Handshake was completed") {
			io.WriteString(stdin, req)
			sent = true
		}
		if bytes.Contains(all.Bytes(), responseFor("POST", "/gnutls", []byte(body))) || err != nil {
			break
		}
	}
	stdin.Close()
	cmd.Wait()
	if !bytes.Contains(all.Bytes(), responseFor("POST", "/gnutls", []byte(body))) {
		t.Fatalf("gnutls-cli output:\n%s", all.String())
	}
	f := checkHTTP1Exchange(t, rec, cmd.Process.Pid, "POST", "/gnutls", []byte(body))
	if string(f.c2s) != req {
		t.Errorf("client->server %q, want exactly %q", f.c2s, req)
	}
}
