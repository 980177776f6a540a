package jobspec

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseSize(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr string
	}{
		{name: "bytes", in: "1048576", want: 1 << 20},
		{name: "zero", in: "0", want: 0},
		{name: "B", in: "512B", want: 512},
		{name: "K", in: "2K", want: 2000},
		{name: "KB", in: "2KB", want: 2000},
		{name: "Ki", in: "2Ki", want: 2048},
		{name: "KiB", in: "2KiB", want: 2048},
		{name: "M", in: "3M", want: 3_000_000},
		{name: "MB", in: "3MB", want: 3_000_000},
		{name: "Mi", in: "3Mi", want: 3 << 20},
		{name: "MiB", in: "64MiB", want: 64 << 20},
		{name: "G", in: "1G", want: 1_000_000_000},
		{name: "GB", in: "1GB", want: 1_000_000_000},
		{name: "Gi", in: "1Gi", want: 1 << 30},
		{name: "GiB", in: "1GiB", want: 1 << 30},
		{name: "T", in: "2T", want: 2_000_000_000_000},
		{name: "TB", in: "2TB", want: 2_000_000_000_000},
		{name: "Ti", in: "2Ti", want: 2 << 40},
		{name: "TiB", in: "2TiB", want: 2 << 40},
		{name: "lower case", in: "64mib", want: 64 << 20},
		{name: "space before unit", in: "64 MiB", want: 64 << 20},
		{name: "surrounding space", in: " 1G ", want: 1_000_000_000},
		{name: "fraction", in: "1.5KiB", want: 1536},
		{name: "fraction rounds down", in: "1.0001KiB", want: 1024},
		{name: "fraction of a byte", in: "0.5", want: 0},
		{name: "leading dot", in: ".5K", want: 500},
		{name: "trailing dot", in: "5.K", want: 5000},
		{name: "largest", in: "9223372036854775807", want: math.MaxInt64},
		{name: "largest with unit", in: "8388607.999999TiB", want: 8388607<<40 + 1099510528264},
		{name: "empty", in: "", wantErr: "size is empty"},
		{name: "blank", in: "  ", wantErr: "size is empty"},
		{name: "negative", in: "-1MiB", wantErr: `size "-1MiB": must not be negative`},
		{name: "plus sign", in: "+1", wantErr: "must be a number with an optional unit"},
		{name: "unit only", in: "MiB", wantErr: "must be a number with an optional unit"},
		{name: "dot only", in: ".", wantErr: "must be a number with an optional unit"},
		{name: "two dots", in: "1.2.3M", wantErr: "must be a number with an optional unit"},
		{name: "unknown unit", in: "1PB", wantErr: `unknown unit "PB"`},
		{name: "bits", in: "1Mbit", wantErr: `unknown unit "Mbit"`},
		{name: "exponent", in: "1e9", wantErr: `unknown unit "e9"`},
		{name: "underscores", in: "1_000", wantErr: `unknown unit "_000"`},
		{name: "overflow", in: "9223372036854775808", wantErr: "too large"},
		{name: "overflow with unit", in: "8388608TiB", wantErr: "too large"},
		{name: "too long", in: "1" + string(make([]byte, 100)), wantErr: "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			got, err := ParseSize(tt.in)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestFormatSize(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		in   int64
		want string
	}{
		{name: "zero", in: 0, want: "0"},
		{name: "odd bytes", in: 1000001, want: "1000001"},
		{name: "KiB", in: 2048, want: "2KiB"},
		{name: "not a whole KiB", in: 1536, want: "1536"},
		{name: "MiB", in: 64 << 20, want: "64MiB"},
		{name: "GiB", in: 3 << 30, want: "3GiB"},
		{name: "TiB", in: 1 << 40, want: "1TiB"},
		{name: "binary before decimal", in: 1024000, want: "1000KiB"},
		{name: "decimal", in: 1_500_000_000, want: "1500MB"},
		{name: "KB", in: 1000, want: "1KB"},
		{name: "largest", in: math.MaxInt64, want: "9223372036854775807"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			require.Equal(t, tt.want, formatSize(tt.in))
			back, err := ParseSize(tt.want)
			require.NoError(t, err)
			require.Equal(t, tt.in, back)
		})
	}
}

func TestHumanSize(t *testing.T) {
	t.Parallel()
	for in, want := range map[int64]string{
		0: "0B", 1023: "1023B", 1024: "1.0KiB", 1536: "1.5KiB",
		64 << 20: "64.0MiB", 25276510208: "23.5GiB", 3 << 40: "3.0TiB",
	} {
		if got := HumanSize(in); got != want {
			t.Errorf("HumanSize(%d) = %q, want %q", in, got, want)
		}
	}
}
