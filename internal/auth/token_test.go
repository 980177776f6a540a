package auth_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/auth"
)

func TestNewTokenSecret(t *testing.T) {
	t.Parallel()
	id, full := auth.NewTokenSecret()
	text := full.Reveal()
	require.Len(t, id, 12)
	require.True(t, strings.HasPrefix(text, "drv_"+id+"_"), text)
	require.Len(t, text, len("drv_")+12+1+32)
	require.Equal(t, "<redacted>", full.String(), "the secret hides itself")

	got, ok := auth.ParseToken(text)
	require.True(t, ok)
	require.Equal(t, id, got)

	id2, full2 := auth.NewTokenSecret()
	require.NotEqual(t, id, id2)
	require.NotEqual(t, text, full2.Reveal())
}

func TestParseToken(t *testing.T) {
	t.Parallel()
	good := "drv_abcdefghijkl_" + strings.Repeat("a", 32)
	id, ok := auth.ParseToken(good)
	require.True(t, ok)
	require.Equal(t, "abcdefghijkl", id)
	for _, bad := range []string{
		"", "drv_", "drv__", "garbage", "abcdefghijkl_" + strings.Repeat("a", 32),
		"DRV_abcdefghijkl_" + strings.Repeat("a", 32),
		"drv_abcdefghijk_" + strings.Repeat("a", 32),   // short ID
		"drv_abcdefghijklm_" + strings.Repeat("a", 32), // long ID
		"drv_abcdefghijkl_" + strings.Repeat("a", 31),
		"drv_abcdefghijkl_" + strings.Repeat("a", 33),
		"drv_abcdefghijkl" + strings.Repeat("a", 33),
		" " + good,
	} {
		_, ok := auth.ParseToken(bad)
		require.False(t, ok, "%q", bad)
	}
}

func TestHashAndMatchToken(t *testing.T) {
	t.Parallel()
	_, full := auth.NewTokenSecret()
	text := full.Reveal()
	h := auth.HashToken(text)
	require.Len(t, h, 64, "hex SHA-256")
	require.Equal(t, h, auth.HashToken(text))
	require.NotContains(t, h, text[len(text)-32:])
	require.True(t, auth.MatchToken(text, h))
	require.False(t, auth.MatchToken(text+"x", h))
	last := "x"
	if strings.HasSuffix(text, "x") {
		last = "y" // the changed token must differ from the real one
	}
	require.False(t, auth.MatchToken(text[:len(text)-1]+last, h))
	require.False(t, auth.MatchToken(text, ""))
	require.False(t, auth.MatchToken(text, strings.ToUpper(h)))
	require.False(t, auth.MatchToken("", h))
}

func TestTokenIsUsable(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	before, after := now.Add(-time.Second), now.Add(time.Second)
	require.True(t, auth.Token{}.IsUsable(now))
	require.True(t, auth.Token{ExpiresAt: &after}.IsUsable(now))
	require.False(t, auth.Token{ExpiresAt: &now}.IsUsable(now), "expired at its expiry")
	require.False(t, auth.Token{ExpiresAt: &before}.IsUsable(now))
	require.False(t, auth.Token{RevokedAt: &before}.IsUsable(now))
	require.False(t, auth.Token{RevokedAt: &after, ExpiresAt: &after}.IsUsable(now), "revoked is revoked, whenever")
}
