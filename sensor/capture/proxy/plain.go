package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/oisp/oisp-sensor/sensor/flow"
)

// tapReader tees what it reads from an upstream connection into a tap.
type tapReader struct {
	r   io.Reader
	tap *flowTap
	dir flow.Direction
}

func (t *tapReader) Read(b []byte) (int, error) {
	n, err := t.r.Read(b)
	if n > 0 && t.tap != nil {
		t.tap.Chunk(flow.Chunk{Dir: t.dir, Data: b[:n], At: time.Now()})
	}
	return n, err
}

// tapWriter forwards writes and tees what was written into a tap.
type tapWriter struct {
	w   io.Writer
	tap *flowTap
	dir flow.Direction
}

func (t *tapWriter) Write(b []byte) (int, error) {
	n, err := t.w.Write(b)
	if n > 0 && t.tap != nil {
		t.tap.Chunk(flow.Chunk{Dir: t.dir, Data: b[:n], At: time.Now()})
	}
	return n, err
}

// servePlain forwards plain-HTTP proxy requests (absolute-form URLs). The
// request goes upstream in origin form; the flow records exactly the bytes
// exchanged with the upstream server. Keep-alive is kept on both sides;
// a request for another host closes the previous upstream connection and
// its flow.
func (c *clientConn) servePlain(ctx context.Context, req *http.Request) {
	var (
		up    net.Conn
		upBr  *bufio.Reader
		upKey string
		tap   *flowTap
	)
	closeUp := func(reason string) {
		if up != nil {
			up.Close()
			up = nil
		}
		if tap != nil {
			tap.Close(flow.CloseInfo{Reason: reason})
			tap.Wait()
			tap = nil
		}
	}
	defer func() { closeUp("eof") }()
	for {
		c.p.st.Count("proxy.plain_requests", 1)
		if req.URL.Scheme != "http" || req.URL.Host == "" {
			c.p.st.Count("proxy.bad_request", 1)
			c.reply(http.StatusBadRequest, "oisp-sensor proxy: send absolute http:// URLs, or CONNECT for https")
			return
		}
		host, port, err := splitTarget(req.URL.Host, 80)
		if err != nil {
			c.p.st.Count("proxy.bad_request", 1)
			c.reply(http.StatusBadRequest, "oisp-sensor proxy: bad host")
			return
		}
		key := net.JoinHostPort(host, strconv.Itoa(port))
		if up == nil || key != upKey {
			closeUp("eof")
			if up, err = c.dial(ctx, host, port); err != nil {
				c.reply(http.StatusBadGateway, badGatewayText(host, port, err))
				return
			}
			upKey = key
			if c.p.cfg.Intercept != nil && c.p.cfg.Intercept(host, port) {
				tap = c.p.newTap(c.h, c.newInfo(host, port, up, false), c.log, c.attribute)
				c.p.st.Count("proxy.flows", 1)
			}
			upBr = bufio.NewReaderSize(&tapReader{r: up, tap: tap, dir: flow.ServerToClient}, relayBufferSize)
		}
		for k := range req.Header {
			if strings.HasPrefix(k, "Proxy-") {
				req.Header.Del(k)
			}
		}
		if _, ok := req.Header["User-Agent"]; !ok {
			// Request.Write would add Go's own User-Agent otherwise.
			req.Header["User-Agent"] = []string{""}
		}
		if strings.EqualFold(req.Header.Get("Expect"), "100-continue") {
			// Answer the client ourselves so it sends the body we are about
			// to stream upstream.
			req.Header.Del("Expect")
			io.WriteString(c.conn, "HTTP/1.1 100 Continue\r\n\r\n")
		}
		req.RequestURI = ""
		c.lim.n = 1 << 62
		if err := req.Write(&tapWriter{w: up, tap: tap, dir: flow.ClientToServer}); err != nil {
			c.log.Debug("proxy: forwarding request failed", "host", host, "err", err)
			c.reply(http.StatusBadGateway, "oisp-sensor proxy: upstream closed the connection")
			return
		}
		resp, err := http.ReadResponse(upBr, req)
		if err != nil {
			c.log.Debug("proxy: reading upstream response failed", "host", host, "err", err)
			c.reply(http.StatusBadGateway, "oisp-sensor proxy: no valid response from upstream")
			return
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			// WebSocket and other upgrades: after the 101 header, relay raw.
			if err := resp.Write(c.conn); err != nil {
				return
			}
			reason := relay(readerConn{c.conn, c.br}, readerConn{up, upBr}, tap, false)
			closeUp(reason)
			return
		}
		err = resp.Write(c.conn)
		resp.Body.Close()
		if err != nil || req.Close || resp.Close {
			return
		}
		c.lim.n = maxRequestHeader
		c.conn.SetReadDeadline(time.Now().Add(5 * time.Minute))
		if req, err = http.ReadRequest(c.br); err != nil {
			return
		}
		c.conn.SetReadDeadline(time.Time{})
	}
}
