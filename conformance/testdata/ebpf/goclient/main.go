// Command goclient replays recorded requests with Go's net/http and
// crypto/tls (and the openai-go SDK for the interactions marked for it), as
// a separate process the eBPF capture path observes. The conformance suite
// builds it, plain and stripped.
//
// Modes:
//
//	goclient < spec.json          replay (see spec below)
//	goclient -warmup              wait for stdin to close (lets the sensor attach)
//	goclient -serve -response-file F -cert-out F [-host H]
//	                              serve F as a JSON response to every request
//	                              (TLS, HTTP/1.1 and h2) on a loopback port
//	                              with a self-signed certificate for H written
//	                              to -cert-out; prints the address, then
//	                              answers each line "served" on stdin with
//	                              the number of requests answered so far and
//	                              its CPU time in µs;
//	                              runs until stdin closes
//	goclient -bench N -addr A -url U -ca F [-h2] [-body-bytes B | -body-file F] [-rate R]
//	                              N POSTs to U over one keep-alive connection
//	                              to A, prints the elapsed seconds
//
// The replay spec on stdin is
//
//	{"addr": "127.0.0.1:PORT", "ca": "/path/ca.pem", "h2": false,
//	 "interactions": [{"method": "POST", "url": "https://host/path",
//	   "headers": [["Name", "value"]], "body": "<base64>", "via": "" | "openai-go"}]}
//
// and one JSON line per interaction goes to stdout:
//
//	{"status": 200, "version": "1.1", "body": "<base64>"}
//
// (openai-go: {"status": ..., "sdk_events": n, "sdk_error": "...", "body":
// "<base64 of the raw JSON the SDK parsed>"}).
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

type interaction struct {
	Method  string      `json:"method"`
	URL     string      `json:"url"`
	Headers [][2]string `json:"headers"`
	Body    []byte      `json:"body"`
	Via     string      `json:"via"`
}

type spec struct {
	Addr         string        `json:"addr"`
	CA           string        `json:"ca"`
	H2           bool          `json:"h2"`
	Interactions []interaction `json:"interactions"`
}

type result struct {
	Status    int    `json:"status"`
	Version   string `json:"version,omitempty"`
	Body      []byte `json:"body"`
	SDKEvents int    `json:"sdk_events,omitempty"`
	SDKError  string `json:"sdk_error,omitempty"`
}

func main() {
	warmup := flag.Bool("warmup", false, "wait for stdin to close, then exit")
	bench := flag.Int("bench", 0, "send `N` requests to -url over one connection and print the elapsed seconds")
	benchURL := flag.String("url", "", "bench: request URL (its host is the SNI)")
	benchAddr := flag.String("addr", "", "bench: address to connect to")
	bodyFile := flag.String("body-file", "", "bench: request body file (default: -body-bytes of x)")
	caFile := flag.String("ca", "", "bench: CA certificate file")
	h2 := flag.Bool("h2", false, "bench: use HTTP/2")
	bodyBytes := flag.Int("body-bytes", 1024, "bench: request body size")
	rate := flag.Float64("rate", 0, "bench: requests per second (0: as fast as possible)")
	serve := flag.Bool("serve", false, "serve -response-file until stdin closes")
	responseFile := flag.String("response-file", "", "serve: the response body")
	certOut := flag.String("cert-out", "", "serve: where to write the server certificate (PEM)")
	host := flag.String("host", "api.openai.com", "serve: the name the certificate is for")
	flag.Parse()
	var err error
	switch {
	case *serve:
		err = runServer(*responseFile, *certOut, *host)
	case *warmup:
		_, err = io.Copy(io.Discard, os.Stdin)
	case *bench > 0:
		err = runBench(*bench, *benchAddr, *benchURL, *caFile, *h2, *bodyBytes, *bodyFile, *rate)
	default:
		err = replay(os.Stdin, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "goclient:", err)
		os.Exit(1)
	}
}

// client returns an HTTP client whose connections go to addr whatever the
// URL's host, with that host as SNI, speaking h2 or HTTP/1.1.
func client(addr, caFile string, h2, compression bool) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no certificate", caFile)
	}
	protos := []string{"http/1.1"}
	if h2 {
		protos = []string{"h2"}
	}
	dialer := &net.Dialer{Timeout: 30 * time.Second}
	tr := &http.Transport{
		DialTLSContext: func(ctx context.Context, network, hostport string) (net.Conn, error) {
			host, _, _ := net.SplitHostPort(hostport)
			c, err := dialer.DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(c, &tls.Config{RootCAs: roots, ServerName: host, NextProtos: protos})
			if err := tc.HandshakeContext(ctx); err != nil {
				c.Close()
				return nil, err
			}
			return tc, nil
		},
		ForceAttemptHTTP2:   h2,
		DisableCompression:  !compression,
		MaxIdleConnsPerHost: 4,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse // a recorded redirect is the answer
	}}, nil
}

func replay(in io.Reader, out io.Writer) error {
	var sp spec
	if err := json.NewDecoder(in).Decode(&sp); err != nil {
		return fmt.Errorf("read spec: %w", err)
	}
	plain, err := client(sp.Addr, sp.CA, sp.H2, false)
	if err != nil {
		return err
	}
	// The SDK runs as it does by default: with Go's transparent gzip.
	sdk, err := client(sp.Addr, sp.CA, sp.H2, true)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	ctx := context.Background()
	for i, it := range sp.Interactions {
		var res result
		var err error
		switch it.Via {
		case "":
			res, err = do(ctx, plain, it)
		case "openai-go":
			res, err = viaOpenAI(ctx, sdk, it)
		default:
			err = fmt.Errorf("unknown client %q", it.Via)
		}
		if err != nil {
			return fmt.Errorf("interaction %d (%s %s): %w", i+1, it.Method, it.URL, err)
		}
		if err := enc.Encode(res); err != nil {
			return err
		}
	}
	return nil
}

func do(ctx context.Context, cl *http.Client, it interaction) (result, error) {
	var body io.Reader
	if len(it.Body) > 0 {
		body = bytes.NewReader(it.Body)
	}
	req, err := http.NewRequestWithContext(ctx, it.Method, it.URL, body)
	if err != nil {
		return result{}, err
	}
	for _, h := range it.Headers {
		req.Header.Add(h[0], h[1])
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "") // send none rather than Go's
	}
	resp, err := cl.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{}, err
	}
	return result{Status: resp.StatusCode, Version: fmt.Sprintf("%d", resp.ProtoMajor) + minor(resp), Body: data}, nil
}

func minor(resp *http.Response) string {
	if resp.ProtoMajor == 1 {
		return fmt.Sprintf(".%d", resp.ProtoMinor)
	}
	return ""
}

// viaOpenAI re-issues a chat completions request through openai-go: the
// recorded body is sent as is, and the SDK must parse the reply.
func viaOpenAI(ctx context.Context, cl *http.Client, it interaction) (result, error) {
	u, err := url.Parse(it.URL)
	if err != nil {
		return result{}, err
	}
	base, ok := strings.CutSuffix(u.Path, "/chat/completions")
	if !ok || it.Method != http.MethodPost {
		return result{}, errors.New("not a chat completions request")
	}
	var params openai.ChatCompletionNewParams
	if err := json.Unmarshal(it.Body, &params); err != nil {
		return result{}, fmt.Errorf("recorded body is not a chat completions request: %w", err)
	}
	var probe struct {
		Stream bool `json:"stream"`
	}
	_ = json.Unmarshal(it.Body, &probe)
	opts := []option.RequestOption{
		option.WithBaseURL(u.Scheme + "://" + u.Host + base + "/"),
		option.WithHTTPClient(cl),
		option.WithAPIKey("sk-oisp-conformance-placeholder"),
		option.WithMaxRetries(0),
		option.WithRequestTimeout(2 * time.Minute),
		option.WithRequestBody("application/json", it.Body),
	}
	for k, vs := range u.Query() {
		for _, v := range vs {
			opts = append(opts, option.WithQueryAdd(k, v))
		}
	}
	// The recorded credential headers (or none) replace the SDK's
	// placeholder key just before the request leaves.
	creds := http.Header{}
	seen := map[string]bool{}
	for _, h := range it.Headers {
		switch strings.ToLower(h[0]) {
		case "authorization", "x-api-key", "api-key":
			creds.Add(h[0], h[1])
			continue
		case "content-type", "accept-encoding":
			continue
		}
		// Set, then add: recorded values replace the SDK's own.
		if seen[strings.ToLower(h[0])] {
			opts = append(opts, option.WithHeaderAdd(h[0], h[1]))
		} else {
			opts = append(opts, option.WithHeader(h[0], h[1]))
		}
		seen[strings.ToLower(h[0])] = true
	}
	opts = append(opts, option.WithMiddleware(func(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
		for _, k := range []string{"Authorization", "X-Api-Key", "Api-Key"} {
			req.Header.Del(k)
		}
		for k, vs := range creds {
			req.Header[k] = append([]string(nil), vs...)
		}
		resp, err := next(req)
		if resp != nil && resp.Body != nil {
			// The SDK stops reading a stream at an in-stream error; read
			// the rest on Close, as a client finishing its connection
			// would, so the capture sees the whole recorded response.
			resp.Body = drainOnClose{resp.Body}
		}
		return resp, err
	}))
	c := openai.NewClient(opts...)
	res := result{Status: http.StatusOK}
	var callErr error
	if probe.Stream {
		s := c.Chat.Completions.NewStreaming(ctx, params)
		for s.Next() {
			res.SDKEvents++
		}
		callErr = s.Err()
		s.Close()
	} else {
		cc, err := c.Chat.Completions.New(ctx, params)
		callErr = err
		if err == nil {
			res.Body = []byte(cc.RawJSON())
		}
	}
	if callErr != nil {
		var apiErr *openai.Error
		if errors.As(callErr, &apiErr) {
			res.Status = apiErr.StatusCode
		}
		res.SDKError = callErr.Error()
	}
	return res, nil
}

// runBench sends n POSTs over one keep-alive connection to addr and prints
// the elapsed seconds; rate > 0 paces them.
func runBench(n int, addr, target, caFile string, h2 bool, bodyBytes int, bodyFile string, rate float64) error {
	cl, err := client(addr, caFile, h2, false)
	if err != nil {
		return err
	}
	body := bytes.Repeat([]byte("x"), bodyBytes)
	if bodyFile != "" {
		if body, err = os.ReadFile(bodyFile); err != nil {
			return err
		}
	}
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(time.Second) / rate)
	}
	start := time.Now()
	for i := range n {
		if interval > 0 {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d)
			}
		}
		req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := cl.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("request %d: status %d", i+1, resp.StatusCode)
		}
	}
	fmt.Printf("%.6f\n", time.Since(start).Seconds())
	return nil
}

// runServer answers every request with the response file over TLS (h2 and
// HTTP/1.1) until stdin closes.
func runServer(responseFile, certOut, host string) error {
	body, err := os.ReadFile(responseFile)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(certOut, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var served atomic.Int64
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.Write(body)
			served.Add(1)
		}),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
			NextProtos:   []string{"h2", "http/1.1"},
		},
	}
	go srv.ServeTLS(ln, "", "")
	fmt.Println(ln.Addr().String())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "served" {
			var ru syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
			cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			fmt.Println(served.Load(), cpu.Microseconds())
		}
	}
	return srv.Close()
}

// drainOnClose reads what is left of a body before closing it.
type drainOnClose struct{ io.ReadCloser }

func (d drainOnClose) Close() error {
	_, _ = io.Copy(io.Discard, d.ReadCloser)
	return d.ReadCloser.Close()
}
