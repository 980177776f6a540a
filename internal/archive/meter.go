package archive

import "io"

// countingReader counts the bytes read through it: the compressed side of
// a ratio.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// ratioMeter enforces [Limits.MaxRatio]: it fails once the bytes
// decompressed exceed max times the compressed bytes consumed, after the
// first ratioGrace bytes.
type ratioMeter struct {
	in  func() int64 // compressed bytes consumed so far
	out int64        // decompressed bytes produced so far
	max int64
}

// add records n more decompressed bytes.
func (m *ratioMeter) add(n int) error {
	m.out += int64(n)
	// Dividing rather than multiplying cannot overflow whatever max is.
	if m.out > ratioGrace && m.out/m.max > m.in() {
		return limitError("compression ratio over %d (%d bytes from %d)", m.max, m.out, m.in())
	}
	return nil
}

// meteredReader feeds what it reads to a ratioMeter and fails when the
// meter does. It wraps a decompressor's output.
type meteredReader struct {
	r io.Reader
	m *ratioMeter
}

func (r meteredReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if merr := r.m.add(n); merr != nil {
		return n, merr
	}
	return n, err
}
