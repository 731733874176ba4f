package secret

import (
	"slices"
	"strings"
	"testing"
)

func TestRedactArgs(t *testing.T) {
	const key = "sk-proj-abcdefghijklmnopqrstuvwxyz012345"
	for _, c := range []struct {
		name string
		in   []string
		want []string
	}{
		{"nothing secret is kept as is",
			[]string{"python3", "agent.py", "--model", "gpt-4o", "--max-tokens", "100", "https://api.openai.com/v1/chat/completions"},
			nil},
		{"curl -H Authorization",
			[]string{"curl", "-H", "Authorization: Bearer " + key, "-H", "Content-Type: application/json", "https://api.openai.com/v1/models"},
			[]string{"curl", "-H", "Authorization: Bearer REDACTED", "-H", "Content-Type: application/json", "https://api.openai.com/v1/models"}},
		{"x-api-key header word",
			[]string{"curl", "-H", "x-api-key: sk-ant-api03-abcdefghijklmnopqrst"},
			[]string{"curl", "-H", "x-api-key: REDACTED"}},
		{"option named like a credential, separate value",
			[]string{"llm", "--key", "plainsecretvalue", "hello"},
			[]string{"llm", "--key", "REDACTED", "hello"}},
		{"option named like a credential, inline value",
			[]string{"agent", "--openai-api-key=abc123", "--auth-token=xyz", "--verbose"},
			[]string{"agent", "--openai-api-key=REDACTED", "--auth-token=REDACTED", "--verbose"}},
		{"header given inline to an option",
			[]string{"curl", "--header=Authorization: Bearer opaque-oauth-token", "--proxy-header=X-Api-Key: abc"},
			[]string{"curl", "--header=Authorization: Bearer REDACTED", "--proxy-header=X-Api-Key: REDACTED"}},
		{"curl -u user:password",
			[]string{"curl", "-u", "alice:hunter2", "--proxy-user", "bob:pw", "https://x"},
			[]string{"curl", "-u", "alice:REDACTED", "--proxy-user", "bob:REDACTED", "https://x"}},
		{"URL password and key parameter",
			[]string{"curl", "https://u:pw@host/v1beta/models?key=AIzaSyabcdefghijklmnop&alt=sse"},
			[]string{"curl", "https://u:REDACTED@host/v1beta/models?key=REDACTED&alt=sse"}},
		{"URL user name that is a token, not one that is an account",
			[]string{"git", "clone", "https://0123456789abcdef0123456789abcdef@github.com/o/r", "ssh://git@github.com/o/r"},
			[]string{"git", "clone", "https://REDACTED@github.com/o/r", "ssh://git@github.com/o/r"}},
		{"a key anywhere in a word",
			[]string{"sh", "-c", "OPENAI_API_KEY=" + key + " python app.py"},
			[]string{"sh", "-c", "OPENAI_API_KEY=REDACTED python app.py"}},
		{"AWS access key id only when it has the shape of one",
			[]string{"aws", "AKIAIOSFODNN7EXAMPLE", "ASIAN_COUNTRIES_LIST_FILE.txt"},
			[]string{"aws", "REDACTED", "ASIAN_COUNTRIES_LIST_FILE.txt"}},
		{"a flag followed by another flag takes no value",
			[]string{"tool", "--token", "--verbose"},
			nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := RedactArgs(c.in)
			want := c.want
			if want == nil {
				want = c.in
			}
			if !slices.Equal(got, want) {
				t.Errorf("RedactArgs(%q)\n got %q\nwant %q", c.in, got, want)
			}
			for _, a := range got {
				if strings.Contains(a, key) || strings.Contains(a, "hunter2") {
					t.Errorf("a secret survived: %q", a)
				}
			}
		})
	}
	in := []string{"curl", "-H", "Authorization: Bearer " + key}
	orig := slices.Clone(in)
	RedactArgs(in)
	if !slices.Equal(in, orig) {
		t.Errorf("RedactArgs modified its argument: %q", in)
	}
}

func FuzzRedactArgs(f *testing.F) {
	f.Add("curl", "-H", "Authorization: Bearer sk-proj-abcdefghijklmnopqrstuvwxyz")
	f.Add("llm", "--key", "sk-abcdefghijklmnopqrstuvwxyz0123")
	f.Add("x", "https://u:p@h/?api_key=1", "--token=sk-abcdefghijklmnopqrstu")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		in := []string{a, b, c}
		got := RedactArgs(in)
		if len(got) != len(in) {
			t.Fatalf("%d args became %d", len(in), len(got))
		}
		// Idempotent: what was redacted stays redacted, nothing new is.
		if again := RedactArgs(got); !slices.Equal(again, got) {
			t.Fatalf("not idempotent: %q -> %q -> %q", in, got, again)
		}
	})
}
