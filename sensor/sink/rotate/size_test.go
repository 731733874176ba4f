package rotate_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/sink/rotate"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0":                   0,
		"1":                   1,
		"512B":                512,
		"100MB":               100_000_000,
		"100mb":               100_000_000,
		"100 MB":              100_000_000,
		" 1GiB ":              1 << 30,
		"1gib":                1 << 30,
		"1G":                  1 << 30,
		"64k":                 64 << 10,
		"64KiB":               64 << 10,
		"64KB":                64_000,
		"2TB":                 2_000_000_000_000,
		"2TiB":                2 << 40,
		"1.5G":                3 << 29,
		"1.5GB":               1_500_000_000,
		"0.5k":                512,
		"1.0001K":             1024, // 1024.1024 rounded down
		".5M":                 1 << 19,
		"7.":                  7,
		"9223372036854775807": 1<<63 - 1,
		"8388607.99999999TiB": 9223372036854764812,
	} {
		got, err := rotate.ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", " ", "MB", ".", "1..5M", "1.2.3K", "-1", "+1", "1e6", "0x10", "1/2",
		"10 MBs", "10 M B", "10XB", "1K5", "9223372036854775808", "8388608TiB", "9999999999999TB",
		"1,000", "١٠MB", // Arabic-Indic digits are not ASCII digits
	} {
		if n, err := rotate.ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, n)
		} else if !strings.Contains(err.Error(), strconv.Quote(in)) {
			t.Errorf("ParseSize(%q): error %q does not name the input", in, err)
		}
	}
}

// FuzzParseSize: never panics, never returns a negative size, agrees with
// strconv on plain integers, and scales with the unit exactly.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"100MB", "1GiB", "1.5G", " 7 kb", "9223372036854775807", "0.", "1e3", "-5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := rotate.ParseSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
		trimmed := strings.TrimSpace(s)
		if v, perr := strconv.ParseInt(trimmed, 10, 64); perr == nil && trimmed[0] != '+' && trimmed[0] != '-' && v != n {
			t.Fatalf("ParseSize(%q) = %d, strconv says %d", s, n, v)
		}
		// The same number in KiB is 1024 times as many bytes, unless
		// that overflows.
		num := strings.TrimRight(trimmed, "BbKkMmGgTtIi ")
		if num == trimmed {
			if k, err := rotate.ParseSize(num + "KiB"); err == nil && k/1024 != n {
				t.Fatalf("ParseSize(%q) = %d but ParseSize(%q) = %d", s, n, num+"KiB", k)
			}
		}
	})
}
