package provider

import (
	"fmt"
	json "github.com/goccy/go-json"
	"io/fs"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/oisp/oisp-sensor/spec"
)

// ProviderInfo is one provider of the registry.
type ProviderInfo struct {
	ID         string   `json:"id"`
	APIFormat  string   `json:"api_format"`
	Hosts      []string `json:"hosts"`
	Patterns   []string `json:"patterns"`
	AuthHeader string   `json:"auth_header"`
}

type hostPattern struct {
	re *regexp.Regexp
	id string
}

// Registry maps hosts to providers and model ids to metadata and prices.
// It is immutable after construction and safe for concurrent use.
type Registry struct {
	providers map[string]*ProviderInfo
	exact     map[string]string // host or host:port -> provider id
	patterns  []hostPattern
	models    *modelTable
}

// RegistryOptions extend the built-in registry.
type RegistryOptions struct {
	// ExtraHosts maps additional hosts (or host:port) to provider ids, for
	// self-hosted gateways and local servers ("llm.internal:8000" → "vllm").
	ExtraHosts map[string]string
}

// LoadRegistry loads the registry embedded from spec/registry.
func LoadRegistry(opt RegistryOptions) (*Registry, error) {
	return LoadRegistryFS(spec.RegistryFS, "registry", opt)
}

// LoadRegistryFS loads a registry from dir in fsys (providers.json, and
// models.json when present).
func LoadRegistryFS(fsys fs.FS, dir string, opt RegistryOptions) (*Registry, error) {
	raw, err := fs.ReadFile(fsys, dir+"/providers.json")
	if err != nil {
		return nil, fmt.Errorf("provider registry: %w", err)
	}
	var doc struct {
		Providers []*ProviderInfo `json:"providers"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("provider registry: providers.json: %w", err)
	}
	r := &Registry{providers: map[string]*ProviderInfo{}, exact: map[string]string{}}
	for _, p := range doc.Providers {
		r.providers[p.ID] = p
		for _, h := range p.Hosts {
			r.exact[strings.ToLower(h)] = p.ID
		}
		for _, pat := range p.Patterns {
			re, err := regexp.Compile(pat)
			if err != nil {
				return nil, fmt.Errorf("provider registry: %s pattern %q: %w", p.ID, pat, err)
			}
			r.patterns = append(r.patterns, hostPattern{re: re, id: p.ID})
		}
	}
	for h, id := range opt.ExtraHosts {
		r.exact[strings.ToLower(h)] = id
		if _, ok := r.providers[id]; !ok {
			r.providers[id] = &ProviderInfo{ID: id, APIFormat: "openai"}
		}
	}
	r.models, err = loadModels(fsys, dir)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Provider returns a provider by id.
func (r *Registry) Provider(id string) (*ProviderInfo, bool) {
	p, ok := r.providers[id]
	return p, ok
}

// Lookup finds the provider of host (with or without ":port"; port may also
// be given separately, 0 when unknown). Exact "host:port" wins over "host",
// then patterns in registry order.
func (r *Registry) Lookup(host string, port int) (Target, bool) {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if strings.IndexByte(h, ':') >= 0 { // SplitHostPort fails (allocating its error) without one
		if hh, p, err := net.SplitHostPort(h); err == nil {
			h = hh
			if n, err := strconv.Atoi(p); err == nil {
				port = n
			}
		}
	}
	h = strings.Trim(h, "[]")
	t := Target{Host: h, Port: port, Known: true}
	if port != 0 {
		// net.JoinHostPort(h, port), built on the stack: a map lookup by
		// string(bytes) does not allocate.
		var buf [96]byte
		var hp []byte
		if strings.IndexByte(h, ':') >= 0 {
			hp = append(buf[:0], net.JoinHostPort(h, strconv.Itoa(port))...)
		} else {
			hp = append(buf[:0], h...)
			hp = append(hp, ':')
			hp = strconv.AppendInt(hp, int64(port), 10)
		}
		if id, ok := r.exact[string(hp)]; ok {
			t.ProviderID = id
			return t, true
		}
	}
	if id, ok := r.exact[h]; ok {
		t.ProviderID = id
		return t, true
	}
	for _, p := range r.patterns {
		if p.re.MatchString(h) {
			t.ProviderID = p.id
			return t, true
		}
	}
	t.Known = false
	t.ProviderID = "other"
	return t, false
}

// Intercept reports whether a capture source should decrypt traffic to
// host:port: true for every registry host.
func (r *Registry) Intercept(host string, port int) bool {
	_, ok := r.Lookup(host, port)
	return ok
}
