package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/oisp/oisp-sensor/sensor/capture/ca"
	"github.com/oisp/oisp-sensor/sensor/capture/proxy"
	"github.com/oisp/oisp-sensor/sensor/provider"
	"github.com/oisp/oisp-sensor/sensor/stats"
	"github.com/spf13/pflag"
)

// captureProxyFlags are the capture proxy's settings, shared by `record
// --proxy` and `proxy`.
type captureProxyFlags struct {
	interceptHosts []string
	upstreamCAs    []string
	h3             string
	resolve        []string
	caDir          string
}

func (f *captureProxyFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.interceptHosts, "intercept-host", nil,
		"also decrypt and capture `HOST[:PORT][=PROVIDER]` (repeatable; *.example.com matches subdomains; PROVIDER is a registry id such as openai or vllm)")
	fs.StringArrayVar(&f.upstreamCAs, "upstream-ca", nil,
		"trust the CA certificates in `FILE` (PEM) for upstream servers, besides the system roots (repeatable; corporate TLS inspection, test servers)")
	fs.StringVar(&f.h3, "h3", "", "also relay HTTP/3 (QUIC) for intercepted hosts on UDP `ADDR` (opt-in; clients must resolve the hosts to it)")
	fs.StringArrayVar(&f.resolve, "resolve", nil,
		"connect to `HOST:PORT:ADDR` instead of what DNS says for HOST:PORT (repeatable; like curl --resolve; ADDR is IP or IP:PORT)")
	caFlag(fs, &f.caDir)
}

// caFlag registers --ca-dir.
func caFlag(fs *pflag.FlagSet, dir *string) {
	fs.StringVar(dir, "ca-dir", "", "`DIR` holding the sensor's CA (default: the user's config directory, see `oisp-sensor ca path`)")
}

// caDir resolves --ca-dir.
func caDir(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	d, err := ca.DefaultDir()
	if err != nil {
		return "", fmt.Errorf("finding the CA directory (set --ca-dir): %w", err)
	}
	return d, nil
}

// loadCA loads the sensor's CA, creating it on first use.
func loadCA(flag string) (*ca.CA, error) {
	dir, err := caDir(flag)
	if err != nil {
		return nil, err
	}
	c, err := ca.LoadOrCreate(dir, ca.Options{})
	if err != nil {
		return nil, fmt.Errorf("sensor CA in %s: %w", dir, err)
	}
	return c, nil
}

// hostRule is one --intercept-host.
type hostRule struct {
	host     string // lower case; "*.x" matches subdomains of x
	port     int    // 0: any port
	provider string
}

func parseHostRule(s string) (hostRule, error) {
	var r hostRule
	spec, prov, _ := strings.Cut(strings.TrimSpace(s), "=")
	r.provider = strings.TrimSpace(prov)
	spec = strings.ToLower(strings.TrimSpace(spec))
	if h, p, err := net.SplitHostPort(spec); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return r, fmt.Errorf("--intercept-host %q: bad port", s)
		}
		spec, r.port = h, n
	}
	spec = strings.Trim(spec, "[]")
	if spec == "" || strings.ContainsAny(spec, "/ ") {
		return r, fmt.Errorf("--intercept-host %q: want HOST, HOST:PORT or *.DOMAIN, optionally =PROVIDER", s)
	}
	r.host = spec
	return r, nil
}

func (r hostRule) matches(host string, port int) bool {
	if r.port != 0 && r.port != port {
		return false
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if suffix, ok := strings.CutPrefix(r.host, "*."); ok {
		return strings.HasSuffix(host, "."+suffix)
	}
	return host == r.host
}

// interceptRules are the parsed --intercept-host flags.
type interceptRules []hostRule

func parseInterceptRules(specs []string) (interceptRules, error) {
	var rules interceptRules
	for _, s := range specs {
		r, err := parseHostRule(s)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// extraHosts maps the rules that name a provider to registry entries, so
// their events carry the provider like built-in hosts do.
func (rs interceptRules) extraHosts() map[string]string {
	m := map[string]string{}
	for _, r := range rs {
		if r.provider == "" || strings.HasPrefix(r.host, "*.") {
			continue
		}
		key := r.host
		if r.port != 0 {
			key = net.JoinHostPort(r.host, strconv.Itoa(r.port))
		}
		m[key] = r.provider
	}
	return m
}

func (rs interceptRules) names() []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		n := r.host
		if r.port != 0 {
			n = net.JoinHostPort(r.host, strconv.Itoa(r.port))
		}
		out = append(out, n)
	}
	return out
}

// interceptFunc decrypts registry hosts and the user's rules.
func interceptFunc(reg *provider.Registry, rules interceptRules) func(string, int) bool {
	return func(host string, port int) bool {
		if reg.Intercept(host, port) {
			return true
		}
		return slices.ContainsFunc(rules, func(r hostRule) bool { return r.matches(host, port) })
	}
}

// upstreamRoots reads --upstream-ca files.
func upstreamRoots(files []string) (*x509.CertPool, error) {
	if len(files) == 0 {
		return nil, nil
	}
	pool := x509.NewCertPool()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("--upstream-ca: %w", err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--upstream-ca %s: no PEM certificate in the file", f)
		}
	}
	return pool, nil
}

// resolver parses --resolve HOST:PORT:ADDR into a proxy Resolve function.
func resolver(specs []string) (func(string, int) string, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, s := range specs {
		host, rest, ok1 := strings.Cut(s, ":")
		port, addr, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 || host == "" {
			return nil, fmt.Errorf("--resolve %q: want HOST:PORT:ADDR", s)
		}
		if _, err := strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("--resolve %q: bad port", s)
		}
		if ap, err := netip.ParseAddrPort(addr); err == nil {
			addr = ap.String()
		} else if ip, err := netip.ParseAddr(strings.Trim(addr, "[]")); err == nil {
			addr = net.JoinHostPort(ip.String(), port)
		} else {
			return nil, fmt.Errorf("--resolve %q: ADDR must be IP or IP:PORT", s)
		}
		m[strings.ToLower(host)+":"+port] = addr
	}
	return func(host string, port int) string {
		if a, ok := m[strings.ToLower(host)+":"+strconv.Itoa(port)]; ok {
			return a
		}
		return net.JoinHostPort(host, strconv.Itoa(port))
	}, nil
}

// capture is a configured capture proxy and what status output says about
// it.
type capture struct {
	proxy *proxy.Proxy
	ca    *ca.CA
	rules interceptRules
}

// newCaptureProxy builds the capture proxy listening on addr.
func newCaptureProxy(addr string, f *captureProxyFlags, reg *provider.Registry, st stats.Recorder, log *slog.Logger) (*capture, error) {
	rules, err := parseInterceptRules(f.interceptHosts)
	if err != nil {
		return nil, err
	}
	authority, err := loadCA(f.caDir)
	if err != nil {
		return nil, err
	}
	roots, err := upstreamRoots(f.upstreamCAs)
	if err != nil {
		return nil, err
	}
	resolve, err := resolver(f.resolve)
	if err != nil {
		return nil, err
	}
	if addr == "" {
		return nil, errors.New("the capture proxy needs a listen address (e.g. 127.0.0.1:8080)")
	}
	p, err := proxy.New(proxy.Config{
		Addr:          addr,
		CA:            authority,
		Intercept:     interceptFunc(reg, rules),
		UpstreamRoots: roots,
		Resolve:       resolve,
		H3Addr:        f.h3,
		Stats:         st,
		Logger:        log,
	})
	if err != nil {
		return nil, err
	}
	return &capture{proxy: p, ca: authority, rules: rules}, nil
}
