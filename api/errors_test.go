package api

import (
	"fmt"
	"testing"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/merchant"
	payswitch "github.com/payswitch/payswitch/switch"
)

// The package prefixes go; words of the message that read like one stay.
func TestCleanMessage(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w: 2547****001", payswitch.ErrPayerStopped), "the number refused requests from this merchant: 2547****001"},
		{fmt.Errorf("%w: merchant: required", payswitch.ErrInvalid), "invalid request: merchant: required"},
		{fmt.Errorf("%w: merchant: AC1 is frozen", payswitch.ErrInvalid), "invalid request: merchant: AC1 is frozen"},
		{fmt.Errorf("%w: code 12 was used by a retired product", merchant.ErrTaken), "already taken: code 12 was used by a retired product"},
		{fmt.Errorf("ledger: create account: %w", ledger.ErrDuplicate), "create account: already exists"},
		{fmt.Errorf("%w: only an operator may send an airtime reminder", errForbidden), "forbidden: only an operator may send an airtime reminder"},
	} {
		if got := cleanMessage(tc.err); got != tc.want {
			t.Errorf("cleanMessage(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
