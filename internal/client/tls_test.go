package client_test

import (
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/client"
)

func TestNewHTTPClientTLS12AtLeast(t *testing.T) {
	t.Parallel()
	for name, conf := range map[string]*tls.Config{
		"default":     nil,
		"asks TLS1.0": {MinVersion: tls.VersionTLS10},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tr, ok := client.NewHTTPClient(conf).Transport.(*http.Transport)
			require.True(t, ok)
			require.Equal(t, uint16(tls.VersionTLS12), tr.TLSClientConfig.MinVersion)
		})
	}
}

func TestTLSConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("hello\n"), 0o600))

	conf, err := client.TLSConfig("")
	require.NoError(t, err)
	require.Nil(t, conf.RootCAs, "no CA file: the system's roots")

	_, err = client.TLSConfig(notPEM)
	require.ErrorContains(t, err, "no PEM certificate in it")

	_, err = client.TLSConfig(filepath.Join(dir, "missing.pem"))
	require.ErrorContains(t, err, "read CA bundle")
}
