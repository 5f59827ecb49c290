// Package seal encrypts the few secrets the switch must keep and read back (a queued
// SMS that carries a code, a merchant's webhook secret) with AES-256-GCM, under a key
// derived from the switch's secret and a label per use, so that one secret never serves
// two purposes and a sealed value of one use opens in no other.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// MinKeyLen is the shortest secret New accepts, in bytes.
const MinKeyLen = 16

// ErrOpen: a sealed value could not be opened: malformed, sealed under another key or
// label, or bound to other associated data (moved to another row).
var ErrOpen = errors.New("seal: cannot open")

// Sealer seals and opens values for one use. It is safe for concurrent use.
type Sealer struct{ aead cipher.AEAD }

// New derives the use's key from secret (HMAC-SHA256 of label under secret).
func New(secret []byte, label string) (*Sealer, error) {
	if len(secret) < MinKeyLen {
		return nil, fmt.Errorf("seal key is %d bytes, want at least %d", len(secret), MinKeyLen)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(label))
	block, err := aes.NewCipher(mac.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plain, bound to ad (which Open must be given again): base64 of a random
// nonce and the ciphertext.
func (s *Sealer) Seal(plain, ad []byte) (string, error) {
	n := s.aead.NonceSize()
	nonce := make([]byte, n, n+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	return base64.StdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, ad)), nil
}

// Open decrypts what Seal made with the same key, label and ad; anything else is ErrOpen.
func (s *Sealer) Open(sealed string, ad []byte) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(sealed)
	n := s.aead.NonceSize()
	if err != nil || len(b) < n {
		return nil, fmt.Errorf("%w: malformed", ErrOpen)
	}
	plain, err := s.aead.Open(nil, b[:n], b[n:], ad)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOpen, err)
	}
	return plain, nil
}
