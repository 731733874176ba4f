package http1

import (
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"strings"
	"testing"
)

// responseFields is the header block of a recorded OpenAI response, the
// kind every exchange carries.
const responseFields = "Date: Mon, 18 Aug 2025 12:43:00 GMT\r\nContent-Type: application/json\r\n" +
	"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\nAccess-Control-Expose-Headers: X-Request-ID\r\n" +
	"Openai-Organization: user-abc\r\nOpenai-Processing-Ms: 237\r\nOpenai-Project: proj_abc\r\nOpenai-Version: 2020-10-01\r\n" +
	"X-Ratelimit-Limit-Requests: 10000\r\nX-Ratelimit-Limit-Tokens: 30000000\r\nX-Ratelimit-Remaining-Requests: 9999\r\n" +
	"X-Ratelimit-Remaining-Tokens: 29999990\r\nX-Ratelimit-Reset-Requests: 6ms\r\nX-Ratelimit-Reset-Tokens: 0s\r\n" +
	"X-Request-Id: req_0123456789abcdef\r\nStrict-Transport-Security: max-age=31536000; includeSubDomains; preload\r\n" +
	"Cf-Cache-Status: DYNAMIC\r\nSet-Cookie: __cf_bm=abc; path=/; expires=Mon, 18-Aug-25 13:13:00 GMT; domain=.api.openai.com; HttpOnly; Secure; SameSite=None\r\n" +
	"X-Content-Type-Options: nosniff\r\nServer: cloudflare\r\nCf-Ray: 87084f286b44103c-LAX\r\nContent-Encoding: gzip\r\nAlt-Svc: h3=\":443\"; ma=86400\r\n\r\n"

// BenchmarkParseFields measures parsing one response header block into a
// header, per field.
func BenchmarkParseFields(b *testing.B) {
	n := strings.Count(responseFields, "\n") - 1
	b.ReportAllocs()
	for b.Loop() {
		h := make(httpmsg.Header, 0, n)
		if _, bad, _ := parseFields(responseFields, h); bad != 0 {
			b.Fatal(bad)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/field")
}
