package rotate

import (
	"fmt"
	"math/big"
	"strings"
)

// sizeUnits are the suffixes ParseSize accepts, lower-cased. KB, MB, … are
// SI (powers of 1000) as disks are sold; KiB, MiB, … and the bare K, M, …
// that logrotate and dd use are powers of 1024.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
	"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
}

// ParseSize parses a byte count such as "100MB", "1GiB", "512k" or "1.5G"
// (units are case-insensitive; a space may separate number and unit). It
// rejects negative, empty and out-of-range sizes; fractions of a byte are
// rounded down.
func ParseSize(s string) (int64, error) {
	in := strings.TrimSpace(s)
	i := 0
	dots := 0
	for i < len(in) && (in[i] >= '0' && in[i] <= '9' || in[i] == '.') {
		if in[i] == '.' {
			dots++
		}
		i++
	}
	num, unit := in[:i], strings.ToLower(strings.TrimSpace(in[i:]))
	if num == "" || num == "." || dots > 1 {
		return 0, fmt.Errorf("size %q: want a number with an optional unit, like 100MB or 1GiB", s)
	}
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q (want B, KB, MB, GB, TB or KiB, MiB, GiB, TiB)", s, in[i:])
	}
	// A rational keeps "1.1GB" exact; the digits are checked above, so
	// SetString sees only a decimal.
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("size %q: want a number with an optional unit, like 100MB or 1GiB", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if !n.IsInt64() {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n.Int64(), nil
}
