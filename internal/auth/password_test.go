package auth_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/auth"
)

func TestHashPassword(t *testing.T) {
	t.Parallel()
	const pw = "a long enough password"
	h, err := auth.HashPassword(pw)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$"), h)
	require.NotContains(t, h, pw)
	require.True(t, auth.CheckPassword(h, pw))

	h2, err := auth.HashPassword(pw)
	require.NoError(t, err)
	require.NotEqual(t, h, h2, "each hash has its own salt")
	require.True(t, auth.CheckPassword(h2, pw))

	_, err = auth.HashPassword(strings.Repeat("x", auth.MinPasswordLen-1))
	require.Error(t, err)
	_, err = auth.HashPassword(strings.Repeat("x", auth.MinPasswordLen))
	require.NoError(t, err)
}

func TestCheckPassword(t *testing.T) {
	t.Parallel()
	const pw = "a long enough password"
	h, err := auth.HashPassword(pw)
	require.NoError(t, err)
	parts := strings.Split(h, "$") // "", argon2id, v=19, m=…,t=…,p=…, salt, key
	require.Len(t, parts, 6)
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	flip := func(b64 string) string {
		raw, err := base64.RawStdEncoding.DecodeString(b64)
		require.NoError(t, err)
		raw[0] ^= 1
		return base64.RawStdEncoding.EncodeToString(raw)
	}

	for name, c := range map[string]struct{ hash, password string }{
		"wrong password":      {h, "a long enough passworD"},
		"empty password":      {h, ""},
		"password with extra": {h, pw + " "},
		"tampered key":        {with(5, flip(parts[5])), pw},
		"tampered salt":       {with(4, flip(parts[4])), pw},
		"other parameters":    {with(3, "m=19456,t=3,p=1"), pw},
		"bcrypt":              {"$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", pw},
		"plain text":          {pw, pw},
		"empty hash":          {"", pw},
		"argon2i":             {with(1, "argon2i"), pw},
		"bad base64 salt":     {with(4, "!!!"), pw},
		"bad base64 key":      {with(5, "!!!"), pw},
		"empty key":           {with(5, ""), pw},
		"no parameters":       {with(3, "x"), pw},
		"too few parts":       {strings.Join(parts[:5], "$"), pw},
		"too many parts":      {h + "$x", pw},
		// Parameters a stored hash could be tampered to: refused, not a
		// panic, nor a gigabyte of memory, nor minutes of work.
		"zero passes":    {with(3, "m=19456,t=0,p=1"), pw},
		"zero lanes":     {with(3, "m=19456,t=2,p=0"), pw},
		"huge memory":    {with(3, "m=4294967295,t=2,p=1"), pw},
		"many passes":    {with(3, "m=19456,t=4294967295,p=1"), pw},
		"lanes overflow": {with(3, "m=19456,t=2,p=256"), pw},
		"negative":       {with(3, "m=-1,t=2,p=1"), pw},
	} {
		require.False(t, auth.CheckPassword(c.hash, c.password), name)
	}
}

func TestCheckNoUser(t *testing.T) {
	t.Parallel()
	require.False(t, auth.CheckNoUser("not-a-password-of-anyone"))
	require.False(t, auth.CheckNoUser(""))
}

func TestRandomPassword(t *testing.T) {
	t.Parallel()
	a, b := auth.RandomPassword(), auth.RandomPassword()
	require.Len(t, a, 24)
	require.NotEqual(t, a, b)
	require.GreaterOrEqual(t, len(a), auth.MinPasswordLen)
	_, err := auth.HashPassword(a)
	require.NoError(t, err)
}
