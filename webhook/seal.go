package webhook

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

// errSealed: a merchant's stored secret could not be opened (the seal key changed, or
// the row was tampered with). Deliveries to that merchant fail until the endpoint is set
// again.
var errSealed = errors.New("webhook: cannot open the endpoint's secret (the switch's key changed?); set the webhook again")

// newAEAD derives the key that seals merchants' secrets from the switch's secret, under
// a label of its own, so that one secret never serves two purposes (outbox seals codes
// under another).
func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) < 16 {
		return nil, fmt.Errorf("webhook: seal key is %d bytes, want at least 16", len(key))
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("payswitch webhook secret seal v1"))
	block, err := aes.NewCipher(mac.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("webhook: seal key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("webhook: seal key: %w", err)
	}
	return aead, nil
}

// sealAD binds a sealed secret to its merchant, so that it cannot be copied to another
// merchant's row and used there.
func sealAD(merchantID string) []byte { return []byte("webhook endpoint\x00" + merchantID) }

// seal encrypts secret for merchantID's row: base64 of nonce and ciphertext.
func (h *Hooks) seal(merchantID, secret string) (string, error) {
	n := h.aead.NonceSize()
	nonce := make([]byte, n, n+len(secret)+h.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("webhook: seal: %w", err)
	}
	return base64.StdEncoding.EncodeToString(h.aead.Seal(nonce, nonce, []byte(secret), sealAD(merchantID))), nil
}

// open decrypts what seal made for merchantID.
func (h *Hooks) open(merchantID, sealed string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(sealed)
	n := h.aead.NonceSize()
	if err != nil || len(b) < n {
		return nil, errSealed
	}
	secret, err := h.aead.Open(nil, b[:n], b[n:], sealAD(merchantID))
	if err != nil {
		return nil, errSealed
	}
	return secret, nil
}
