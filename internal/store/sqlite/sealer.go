package sqlite

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

// sealedPrefix marks a value sealed with the store's key.
const sealedPrefix = "sealed:v1:"

// sealer encrypts the values of secret parameters before they reach the
// database file (AES-256-GCM, a random nonce per value, the parameter's
// role and name as associated data so a sealed value cannot be moved to
// another parameter). Its key lives in a file beside the database, never in
// it: a copy of the database alone (a backup, a file left on a disk) holds
// no secret in clear.
type sealer struct {
	aead cipher.AEAD
}

// keyFile is the file of the key that seals the database at path.
func keyFile(path string) string { return path + ".key" }

// openSealer reads the key of the database at path, making it (0600) the
// first time.
func openSealer(path string) (*sealer, error) {
	name := keyFile(path)
	key, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("make the store's secret key: %w", err)
		}
		if _, err := f.Write(key); err != nil {
			f.Close()
			return nil, fmt.Errorf("make the store's secret key: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("make the store's secret key: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("make the store's secret key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("read the store's secret key: %w", err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("the store's secret key %s holds %d bytes, not 32", name, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

// seal encrypts value for the parameter named by ad.
func (s *sealer) seal(value, ad string) (string, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := s.aead.Seal(nonce, nonce, []byte(value), []byte(ad))
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(out), nil
}

// open decrypts a sealed value; a value stored before sealing (no prefix)
// is returned as it is.
func (s *sealer) open(stored, ad string) (string, error) {
	rest, ok := strings.CutPrefix(stored, sealedPrefix)
	if !ok {
		return stored, nil
	}
	raw, err := base64.RawStdEncoding.DecodeString(rest)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return "", errors.New("a sealed value is damaged")
	}
	plain, err := s.aead.Open(nil, raw[:s.aead.NonceSize()], raw[s.aead.NonceSize():], []byte(ad))
	if err != nil {
		return "", errors.New("a sealed value does not open with the store's key (a key file from another store?)")
	}
	return string(plain), nil
}
