package webhook

import (
	"errors"
	"fmt"

	"github.com/payswitch/payswitch/internal/seal"
)

// errSealed: a merchant's stored secret could not be opened (the seal key changed, or
// the row was tampered with). Deliveries to that merchant fail until the endpoint is set
// again.
var errSealed = errors.New("webhook: cannot open the endpoint's secret (the switch's key changed?); set the webhook again")

// newSealer derives the key that seals merchants' secrets from the switch's secret,
// under a label of its own, so that one secret never serves two purposes (outbox seals
// codes under another).
func newSealer(key []byte) (*seal.Sealer, error) {
	s, err := seal.New(key, "payswitch webhook secret seal v1")
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	return s, nil
}

// sealAD binds a sealed secret to its merchant, so that it cannot be copied to another
// merchant's row and used there.
func sealAD(merchantID string) []byte { return []byte("webhook endpoint\x00" + merchantID) }

// seal encrypts secret for merchantID's row: base64 of nonce and ciphertext.
func (h *Hooks) seal(merchantID, secret string) (string, error) {
	sealed, err := h.sealer.Seal([]byte(secret), sealAD(merchantID))
	if err != nil {
		return "", fmt.Errorf("webhook: %w", err)
	}
	return sealed, nil
}

// open decrypts what seal made for merchantID.
func (h *Hooks) open(merchantID, sealed string) ([]byte, error) {
	secret, err := h.sealer.Open(sealed, sealAD(merchantID))
	if err != nil {
		return nil, errSealed
	}
	return secret, nil
}
