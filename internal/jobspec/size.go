package jobspec

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// sizeUnits maps a lower-cased unit suffix to its number of bytes. Bare
// K, M, G, T are decimal like KB, MB, GB, TB; the binary units need the "i".
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "ki": 1 << 10, "kib": 1 << 10,
	"m": 1e6, "mb": 1e6, "mi": 1 << 20, "mib": 1 << 20,
	"g": 1e9, "gb": 1e9, "gi": 1 << 30, "gib": 1 << 30,
	"t": 1e12, "tb": 1e12, "ti": 1 << 40, "tib": 1 << 40,
}

// maxSizeLen bounds the text ParseSize reads, so that a hostile document
// cannot make it do arithmetic on a megabyte of digits.
const maxSizeLen = 64

// ParseSize parses a memory size into bytes: a plain number of bytes
// ("1048576") or a number with a unit. B, K/KB, M/MB, G/GB and T/TB are powers
// of 1000; Ki/KiB, Mi/MiB, Gi/GiB and Ti/TiB are powers of 1024. Units are
// case-insensitive and may follow a space ("64 MiB"). A fraction is allowed
// and rounded down to whole bytes ("1.5KiB" is 1536).
func ParseSize(s string) (int64, error) {
	in := strings.TrimSpace(s)
	switch {
	case in == "":
		return 0, errors.New("size is empty")
	case len(in) > maxSizeLen:
		return 0, fmt.Errorf("size %.20q...: too long", in)
	case in[0] == '-':
		return 0, fmt.Errorf("size %q: must not be negative", s)
	}
	end := strings.IndexFunc(in, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if end < 0 {
		end = len(in)
	}
	number, unit := in[:end], strings.TrimSpace(in[end:])
	whole, frac, _ := strings.Cut(number, ".")
	if whole+frac == "" || strings.Contains(frac, ".") {
		return 0, fmt.Errorf("size %q: must be a number with an optional unit, like 64MiB or 1G", s)
	}
	mult, ok := sizeUnits[strings.ToLower(unit)]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q: use B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)", s, unit)
	}
	// Exact arithmetic: (whole.frac × mult) rounded down is
	// (wholefrac × mult) / 10^len(frac), with no float rounding at the edges.
	n, _ := new(big.Int).SetString(whole+frac+"0", 10) // the "0" makes "5." and ".5" parse
	n.Mul(n, big.NewInt(mult))
	n.Quo(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac)+1)), nil))
	if !n.IsInt64() {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return n.Int64(), nil
}

// formatSize renders b in the largest unit that holds it exactly, preferring
// binary units ("64MiB", "1500MB", "1000"), so that ParseSize reads it back
// to the same number.
func formatSize(b int64) string {
	if b <= 0 {
		return strconv.FormatInt(b, 10)
	}
	for _, u := range []struct {
		name string
		size int64
	}{
		{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
		{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3},
	} {
		if b%u.size == 0 {
			return strconv.FormatInt(b/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(b, 10)
}

// HumanSize renders b for people to read, in binary units with one
// decimal ("512B", "1.5KiB", "23.5GiB"); unlike the sizes of job files it
// is rounded, so ParseSize may not read it back to b.
func HumanSize(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%dB", b)
	}
	div, exp := int64(unit), 0
	for m := b / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(b)/float64(div), "KMGTPE"[exp])
}
