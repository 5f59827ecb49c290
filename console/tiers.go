package console

import (
	"context"
	"strconv"

	"github.com/payswitch/payswitch/ledger"
)

// TierReader is what a Backend has when the switch keeps wallets' KYC tiers (contract
// section 14): the account page then shows a wallet's tier. A Backend without it shows
// none, so that the console's Backend need not change for it.
type TierReader interface {
	// AccountTier is the wallet id's tier: 0 unregistered, 1 basic, 2 full KYC.
	AccountTier(ctx context.Context, id string) (int, error)
}

// tierNames are the tiers as the account page names them.
var tierNames = [...]string{"0 (unregistered)", "1 (basic)", "2 (full KYC)"}

// tierLabel is the account page's words for a's tier and the tier: "" and -1 when a is
// not a wallet or the backend keeps no tiers.
func (c *Console) tierLabel(ctx context.Context, a ledger.Account) (string, int, error) {
	tr, ok := c.b.(TierReader)
	if !ok || a.Type != ledger.Wallet {
		return "", -1, nil
	}
	t, err := tr.AccountTier(ctx, a.ID)
	if err != nil {
		return "", -1, err
	}
	if t < 0 || t >= len(tierNames) {
		return strconv.Itoa(t), t, nil
	}
	return tierNames[t], t, nil
}
