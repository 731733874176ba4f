package httpmsg

import "testing"

func TestRequestPath(t *testing.T) {
	for target, want := range map[string]string{
		"/v1/chat/completions": "/v1/chat/completions",
		"/v1/models?limit=5":   "/v1/models",
		"/a#frag?x":            "/a",
		"/a?x#frag":            "/a",
		"https://api.openai.com/v1/embeddings?x=1": "/v1/embeddings",
		"http://localhost:11434":                   "",
		"https://h?q":                              "",
		"*":                                        "*",
		"api.openai.com:443":                       "api.openai.com:443",
		"":                                         "",
	} {
		r := Request{Target: target}
		if got := r.Path(); got != want {
			t.Errorf("Path of %q = %q; want %q", target, got, want)
		}
	}
}
