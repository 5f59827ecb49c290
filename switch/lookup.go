package payswitch

import (
	"context"
	"errors"
	"fmt"

	"github.com/payswitch/payswitch/ledger"
)

// HasAccount reports whether msisdn (in any spelling Normalize accepts) has an account
// with the switch, of any type. The voice and USSD menus ask it when a call or a dial
// starts, so that a number with no account is told so at once rather than after a
// whole menu; a number that is not a phone number has none. Whether the account may pay
// is still the engine's decision when a payment is requested.
func (e *Engine) HasAccount(ctx context.Context, msisdn string) (bool, error) {
	n, err := e.Normalize(msisdn)
	if err != nil {
		return false, nil
	}
	_, err = e.ledger.AccountByMSISDN(ctx, n)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("account of %s: %w", Mask(n), err)
	}
	return true, nil
}
