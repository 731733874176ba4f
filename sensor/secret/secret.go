// Package secret owns recognising credentials in what the sensor writes:
// header names that carry them, key-like parameter and option names, and
// the redaction of URLs and command lines. Secrets never leave the sensor;
// every writer of headers, URLs or process command lines goes through here.
package secret

import (
	"net/url"
	"strings"
)

// Redacted replaces a secret value.
const Redacted = "REDACTED"

// headers carry credentials (lower-case names).
var headers = map[string]bool{
	"authorization":       true,
	"proxy-authorization": true,
	"x-api-key":           true,
	"api-key":             true,
	"x-goog-api-key":      true,
}

// IsHeader reports whether a header of this name carries a credential.
func IsHeader(name string) bool { return headers[strings.ToLower(name)] }

// IsParamName reports whether a query parameter or option name looks like
// it carries a credential: key, api_key, access_token, X-Amz-Signature,
// sig, password …
func IsParamName(name string) bool {
	n := strings.ToLower(name)
	if n == "sig" {
		return true
	}
	for _, suffix := range []string{"key", "token", "secret", "signature", "credential", "password"} {
		if strings.HasSuffix(n, suffix) {
			return true
		}
	}
	return false
}

// RedactURL replaces the values of key-like query parameters, any
// userinfo password, and a password-less user name that is a token
// (https://TOKEN@host: long, or shaped like a provider key; an account
// name like git@ stays); every other byte of the URL is kept.
func RedactURL(raw string) string {
	if at := strings.Index(raw, "://"); at >= 0 {
		rest := raw[at+3:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		if ui := strings.LastIndexByte(rest[:end], '@'); ui >= 0 {
			if colon := strings.IndexByte(rest[:ui], ':'); colon >= 0 {
				raw = raw[:at+3] + rest[:colon+1] + Redacted + rest[ui:]
			} else if user := rest[:ui]; len(user) >= minTokenUser || hasKeyPrefix(user) {
				raw = raw[:at+3] + Redacted + rest[ui:]
			}
		}
	}
	q := strings.IndexByte(raw, '?')
	if q < 0 {
		return raw
	}
	query, frag := raw[q+1:], ""
	if h := strings.IndexByte(query, '#'); h >= 0 {
		query, frag = query[:h], query[h:]
	}
	parts := strings.Split(query, "&")
	changed := false
	for i, p := range parts {
		name, _, hasValue := strings.Cut(p, "=")
		if un, err := url.QueryUnescape(name); err == nil {
			name = un
		}
		if hasValue && IsParamName(name) {
			k, _, _ := strings.Cut(p, "=")
			parts[i] = k + "=" + Redacted
			changed = true
		}
	}
	if !changed {
		return raw
	}
	return raw[:q+1] + strings.Join(parts, "&") + frag
}

// keyPrefixes start API keys of the providers the sensor knows; a
// command-line word that starts with one (and is long enough to be a key)
// is a key wherever it appears.
var keyPrefixes = []string{"sk-", "sk_", "AIza", "xai-", "gsk_", "hf_", "r8_", "pplx-", "csk-", "fw_", "nvapi-", "ya29.", "ghp_", "github_pat_", "glpat-", "xoxb-", "xoxp-"}

// minKeyLen is the shortest word taken for a key by its prefix alone.
const minKeyLen = 20

// RedactArgs returns a process's arguments with credentials replaced:
// values of credential headers given as arguments ("Authorization: Bearer
// …", as curl -H takes them), values of options named like a credential
// (--api-key X, --token=X), curl's -u/--user password, passwords and
// key-like parameters in URLs, and words that look like provider API keys.
// args itself is returned when nothing needs redacting.
func RedactArgs(args []string) []string {
	var out []string
	set := func(i int, v string) {
		if v == args[i] {
			return
		}
		if out == nil {
			out = append([]string(nil), args...)
		}
		out[i] = v
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		set(i, redactWord(a))
		name, value, hasValue := optionOf(a)
		if name == "" {
			continue
		}
		if hasValue {
			v := redactOptionValue(name, value)
			if v == value {
				v = redactWord(value) // --header=Authorization: Bearer …
			}
			if v != value {
				set(i, a[:len(a)-len(value)]+v)
			}
			continue
		}
		if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			if v := redactOptionValue(name, args[i+1]); v != args[i+1] {
				set(i+1, v) // the next word is this option's value
				i++
			}
		}
	}
	if out == nil {
		return args
	}
	return out
}

// optionOf splits "--name=value", "--name" or "-n" into the option name
// (without dashes) and an inline value.
func optionOf(a string) (name, value string, hasValue bool) {
	if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
		return "", "", false
	}
	name = strings.TrimLeft(a, "-")
	if n, v, ok := strings.Cut(name, "="); ok {
		return n, v, true
	}
	return name, "", false
}

// redactOptionValue redacts an option's value when the option carries a
// credential.
func redactOptionValue(name, value string) string {
	switch {
	case name == "u" || name == "user" || name == "proxy-user":
		// curl: user:password
		if u, _, ok := strings.Cut(value, ":"); ok {
			return u + ":" + Redacted
		}
		return value
	case IsParamName(strings.ReplaceAll(name, "-", "_")):
		if value == "" {
			return value
		}
		return Redacted
	}
	return value
}

// redactWord redacts a credential header given as one word, a URL's
// secrets, and words that look like API keys.
func redactWord(a string) string {
	if name, value, ok := strings.Cut(a, ":"); ok && IsHeader(strings.TrimSpace(name)) {
		value = strings.TrimSpace(value)
		scheme, _, hasScheme := strings.Cut(value, " ")
		if hasScheme && !strings.ContainsAny(scheme, "=") {
			return name + ": " + scheme + " " + Redacted
		}
		return name + ": " + Redacted
	}
	if strings.Contains(a, "://") {
		a = RedactURL(a)
	}
	return redactKeys(a)
}

// redactKeys replaces words that start with a known API key prefix.
func redactKeys(a string) string {
	var b strings.Builder
	changed := false
	start := 0
	for i := 0; i <= len(a); i++ {
		if i < len(a) && keyChar(a[i]) {
			continue
		}
		word := a[start:i]
		if len(word) >= minKeyLen && hasKeyPrefix(word) {
			if !changed {
				b.WriteString(a[:start])
				changed = true
			}
			b.WriteString(Redacted)
		} else if changed {
			b.WriteString(word)
		}
		if changed && i < len(a) {
			b.WriteByte(a[i])
		}
		start = i + 1
	}
	if !changed {
		return a
	}
	return b.String()
}

// minTokenUser is the length from which a URL's password-less user name
// is taken for a token: account names are shorter, tokens (GitHub's ghp_…,
// OAuth bearer strings) longer.
const minTokenUser = 20

func keyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

func hasKeyPrefix(w string) bool {
	if strings.HasPrefix(w, "AKIA") || strings.HasPrefix(w, "ASIA") {
		// AWS access key ids: exactly 20 upper-case letters and digits.
		return len(w) == 20 && strings.Trim(w, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == ""
	}
	for _, p := range keyPrefixes {
		if strings.HasPrefix(w, p) {
			return true
		}
	}
	return false
}
