package content

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/stats"
)

// TestSharedReadersAcrossDecoders decodes bodies of every coding, some of
// them corrupt or stacked, with several Decoders lending decompressors from
// one Readers, and checks each result against a Decoder of its own.
func TestSharedReadersAcrossDecoders(t *testing.T) {
	var shared Readers
	type body struct {
		coding string
		wire   []byte
		plain  []byte
	}
	var bodies []body
	for i, coding := range []string{"gzip", "deflate", "rawdeflate", "br", "zstd"} {
		plain := bytes.Repeat([]byte(fmt.Sprintf(`{"n":%d,"text":"body %d"}`, i, i)), 100+i)
		wire := compress(t, coding, plain)
		if coding == "rawdeflate" {
			coding = "deflate"
		}
		bodies = append(bodies, body{coding, wire, plain})
		bodies = append(bodies, body{coding, corruptTail(wire), nil})
	}
	gzipped := compress(t, "gzip", plainJSON)
	bodies = append(bodies, body{"gzip, br", compress(t, "br", gzipped), plainJSON})
	bodies = append(bodies, body{"gzip, gzip", compress(t, "gzip", gzipped), plainJSON})

	decoders := []*Decoder{NewSharedDecoder(stats.Discard{}, &shared), NewSharedDecoder(stats.Discard{}, &shared)}
	for round := range 3 {
		for i, b := range bodies {
			d := decoders[(i+round)%len(decoders)]
			got, gotTrunc, gotErr := d.Decode(b.coding, b.wire, 1<<20)
			want, wantTrunc, wantErr := NewDecoder(stats.Discard{}).Decode(b.coding, b.wire, 1<<20)
			if !bytes.Equal(got, want) || gotTrunc != wantTrunc || (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("round %d body %d (%s): shared decoder gave %d bytes, %v, %v; own decoder %d bytes, %v, %v",
					round, i, b.coding, len(got), gotTrunc, gotErr, len(want), wantTrunc, wantErr)
			}
			if b.plain != nil && !bytes.Equal(got, b.plain) {
				t.Fatalf("round %d body %d (%s): decoded %d bytes, want the %d plain bytes", round, i, b.coding, len(got), len(b.plain))
			}
			if d.gz != nil || d.zl != nil || d.fl != nil || d.br != nil || d.zs != nil {
				t.Fatalf("decoder kept a decompressor after the body")
			}
		}
	}
}
