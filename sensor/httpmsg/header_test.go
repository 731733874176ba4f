package httpmsg

import (
	"net/http"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestHeaderLookup holds Header to http.Header's answers: names in any case,
// repeated fields in order, absent names, names that are not tokens.
func TestHeaderLookup(t *testing.T) {
	var h Header
	for _, f := range [][2]string{
		{"content-type", "application/json"}, {"X-Multi", "1"}, {"Authorization", "Bearer k"},
		{"x-multi", "2"}, {"X-MULTI", "3"}, {"Empty", ""}, {"odd name", "v"}, {":path", "/p"},
	} {
		h.Add(f[0], f[1])
	}
	std := http.Header{}
	for _, f := range h {
		std[f.Name] = append(std[f.Name], f.Value)
	}
	if diff := cmp.Diff(std, h.HTTPHeader()); diff != "" {
		t.Errorf("HTTPHeader (-want +got):\n%s", diff)
	}
	for _, name := range []string{
		"Content-Type", "content-type", "CONTENT-TYPE", "x-multi", "X-Multi", "authorization", "Empty",
		"odd name", "Odd name", ":path", "Missing", "missing", "",
	} {
		if got, want := h.Get(name), std.Get(name); got != want {
			t.Errorf("Get(%q) = %q; want %q", name, got, want)
		}
		if got, want := h.Values(name), std.Values(name); !slices.Equal(got, want) {
			t.Errorf("Values(%q) = %q; want %q", name, got, want)
		}
		_, want := std[http.CanonicalHeaderKey(name)]
		if got := h.Has(name); got != want {
			t.Errorf("Has(%q) = %v; want %v", name, got, want)
		}
	}
	if vs := h.Values("X-Multi"); !slices.Equal(vs, []string{"1", "2", "3"}) {
		t.Errorf("repeated fields %q", vs)
	} else if vs[0] = "changed"; h.Get("X-Multi") != "1" {
		t.Error("Values shares its slice with the header")
	}
}

func TestHeaderSetDel(t *testing.T) {
	h := Header{{"A", "1"}, {"Cookie", "x"}, {"B", "2"}, {"Cookie", "y"}}
	h.Set("cookie", "a=1; b=2")
	if want := (Header{{"A", "1"}, {"Cookie", "a=1; b=2"}, {"B", "2"}}); !slices.Equal(h, want) {
		t.Errorf("Set: %v; want %v", h, want)
	}
	h.Set("C", "3")
	h.Del("a")
	if want := (Header{{"Cookie", "a=1; b=2"}, {"B", "2"}, {"C", "3"}}); !slices.Equal(h, want) {
		t.Errorf("Set and Del: %v; want %v", h, want)
	}
	c := h.Clone()
	c[0].Value = "changed"
	if h[0].Value != "a=1; b=2" {
		t.Error("Clone shares its fields")
	}
	if Header(nil).Clone() != nil || Header(nil).HTTPHeader() != nil || HeaderOf(nil) != nil {
		t.Error("nil must stay nil")
	}
}

// TestHeaderOf: names come out sorted and canonical, each name's values in
// their order.
func TestHeaderOf(t *testing.T) {
	got := HeaderOf(http.Header{"X-B": {"1", "2"}, "content-type": {"a/b"}, "A": {"3"}})
	want := Header{{"A", "3"}, {"X-B", "1"}, {"X-B", "2"}, {"Content-Type", "a/b"}}
	if !slices.Equal(got, want) {
		t.Errorf("HeaderOf: %v; want %v", got, want)
	}
}

// BenchmarkHeaderGet looks up a present and an absent canonical name in a
// response's 24 fields, as provider decoders do for every exchange.
func BenchmarkHeaderGet(b *testing.B) {
	var h Header
	for _, n := range []string{
		"Date", "Content-Type", "Transfer-Encoding", "Connection", "Access-Control-Expose-Headers",
		"Openai-Organization", "Openai-Processing-Ms", "Openai-Project", "Openai-Version",
		"X-Ratelimit-Limit-Requests", "X-Ratelimit-Limit-Tokens", "X-Ratelimit-Remaining-Requests",
		"X-Ratelimit-Remaining-Tokens", "X-Ratelimit-Reset-Requests", "X-Ratelimit-Reset-Tokens",
		"X-Request-Id", "Strict-Transport-Security", "Cf-Cache-Status", "Set-Cookie",
		"X-Content-Type-Options", "Server", "Cf-Ray", "Content-Encoding", "Alt-Svc",
	} {
		h.Add(n, "v")
	}
	std := h.HTTPHeader()
	for _, name := range []string{"X-Request-Id", "Apim-Request-Id"} {
		b.Run(name+"/list", func(b *testing.B) {
			for b.Loop() {
				_ = h.Get(name)
			}
		})
		b.Run(name+"/map", func(b *testing.B) {
			for b.Loop() {
				_ = std.Get(name)
			}
		})
	}
}
