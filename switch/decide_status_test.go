package payswitch

import (
	"errors"
	"testing"
	"time"

	"github.com/payswitch/payswitch/ledger"
)

func TestDecideAccountStatus(t *testing.T) {
	r := testRules(t)
	active := &ledger.Account{ID: "ACW", Type: ledger.Wallet, MSISDN: "254700000001", Status: ledger.Active}
	frozen := &ledger.Account{ID: "ACW", Type: ledger.Wallet, MSISDN: "254700000001", Status: ledger.Frozen}
	closed := &ledger.Account{ID: "ACW", Type: ledger.Wallet, Status: ledger.Closed}
	cash := &ledger.Account{ID: "cash:KES", Type: ledger.Cash, Status: ledger.Active}
	waiting := &Payment{ID: "PAYAAAAAAA", State: StatePendingOTP, PayerAccount: "ACW", PayerMSISDN: "254700000001",
		Amount: 500, ExpiresAt: decideNow.Add(time.Minute)}
	paidTo := &Payment{ID: "PAYBBBBBBB", State: StatePendingOTP, PayerAccount: "ACX", PayerMSISDN: "254700000001",
		Amount: 500, ExpiresAt: decideNow.Add(time.Minute)}
	freeze := AccountStatusChange{Account: "ACW", Status: ledger.Frozen, Reason: "stolen phone", Actor: "ops"}
	with := func(f func(*AccountStatusChange)) AccountStatusChange { c := freeze; f(&c); return c }
	for _, tc := range []struct {
		name    string
		account *ledger.Account
		waiting *Payment
		change  AccountStatusChange
		err     error
		cancels bool
	}{
		{"freeze", active, nil, freeze, nil, false},
		{"freeze cancels the payment waiting for its code", active, waiting, freeze, nil, true},
		{"a payment waiting on another account is not this one's", active, paidTo, freeze, nil, false},
		{"reactivate", frozen, nil, with(func(c *AccountStatusChange) { c.Status = ledger.Active }), nil, false},
		{"reactivating cancels nothing", frozen, waiting, with(func(c *AccountStatusChange) { c.Status = ledger.Active }), nil, false},
		{"no such account", nil, nil, freeze, ErrNotFound, false},
		{"a system account", cash, nil, with(func(c *AccountStatusChange) { c.Account = cash.ID }), ErrInvalid, false},
		{"closed", closed, nil, freeze, ErrConflict, false},
		{"closing is not a status an operator sets here", active, nil, with(func(c *AccountStatusChange) { c.Status = ledger.Closed }), ErrInvalid, false},
		{"an unknown status", active, nil, with(func(c *AccountStatusChange) { c.Status = "asleep" }), ErrInvalid, false},
		{"no reason", active, nil, with(func(c *AccountStatusChange) { c.Reason = "  " }), ErrInvalid, false},
		{"a reason with a control character", active, nil, with(func(c *AccountStatusChange) { c.Reason = "a\x00b" }), ErrInvalid, false},
		{"no actor", active, nil, with(func(c *AccountStatusChange) { c.Actor = "" }), ErrInvalid, false},
		{"no change", frozen, nil, freeze, ErrConflict, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := r.accountStatus(statusSnapshot{Now: decideNow, Account: tc.account, Waiting: tc.waiting}, tc.change)
			if !errors.Is(d.Err, tc.err) || (tc.err == nil) != (d.Err == nil) {
				t.Fatalf("err %v, want %v", d.Err, tc.err)
			}
			if tc.err != nil {
				if d.Change != nil || d.Release || d.Move != "" || len(d.Messages) > 0 {
					t.Fatalf("a refusal writes: %+v", d)
				}
				return
			}
			c := d.Change
			if c == nil || c.Account != tc.account.ID || c.Field != "status" || c.Old != string(tc.account.Status) ||
				c.New != string(tc.change.Status) || c.Reason != tc.change.Reason || c.Actor != "ops" {
				t.Fatalf("change %+v", c)
			}
			if d.Release != tc.cancels || (d.Move == EvCancel) != tc.cancels || (purposes(d.Messages) == "cancelled") != tc.cancels {
				t.Fatalf("cancels %v: release %v move %q messages %s", tc.cancels, d.Release, d.Move, purposes(d.Messages))
			}
			if tc.cancels && (d.Payment != tc.waiting || d.Reason == "") {
				t.Fatalf("payment %+v reason %q", d.Payment, d.Reason)
			}
		})
	}
}
