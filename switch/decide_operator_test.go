package payswitch

import (
	"errors"
	"testing"

	"github.com/payswitch/payswitch/ledger"
)

func TestDecideDeposit(t *testing.T) {
	r := testRules(t)
	wallet := &ledger.Account{ID: "ACW", Type: ledger.Wallet, Name: "W", MSISDN: "254700000001"}
	till := &ledger.Account{ID: "ACT", Type: ledger.Merchant, Name: "Shop", Code: "55501"}
	cash := ledger.Account{ID: "cash:KES", Type: ledger.Cash}
	earlier := &Payment{ID: "PAYEEEEEEE", PayeeAccount: "ACW", Amount: 500}
	base := bookingSnapshot{Now: decideNow, Reference: "CASHIN-1", Key: "deposit:CASHIN-1", System: cash, NewID: "PAYFFFFFFF"}
	for _, tc := range []struct {
		name     string
		account  *ledger.Account
		prev     *Payment
		id       string
		amount   int64
		err      error
		messages string
	}{
		{"a wallet is told its new balance", wallet, nil, "ACW", 500, nil, "deposit"},
		{"a till without a number is not told", till, nil, "ACT", 500, nil, ""},
		{"the same reference again", nil, earlier, "ACW", 500, nil, ""},
		{"the same reference, another amount", nil, earlier, "ACW", 600, ErrConflict, ""},
		{"no such account", nil, nil, "ACX", 500, ErrNotFound, ""},
		{"a system account", &cash, nil, "cash:KES", 500, ErrNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base
			s.Account, s.Prev = tc.account, tc.prev
			d := r.deposit(s, tc.id, tc.amount)
			if !errors.Is(d.Err, tc.err) || (tc.err == nil) != (d.Err == nil) || purposes(d.Messages) != tc.messages {
				t.Fatalf("err %v messages %s", d.Err, purposes(d.Messages))
			}
			booked := tc.err == nil && tc.prev == nil
			if d.Insert != booked || (d.Transfer != nil) != booked {
				t.Fatalf("insert %v transfer %+v", d.Insert, d.Transfer)
			}
			if booked && (d.Transfer.Debit != cash.ID || d.Transfer.Key != s.Key || d.RequestKey != s.Key ||
				d.Payment.State != StateCompleted || d.AddDaily) {
				t.Fatalf("%+v %+v", d, d.Transfer)
			}
			if tc.prev != nil && tc.err == nil && d.Outcome.Payment != tc.prev {
				t.Fatalf("repeat answered %+v", d.Outcome.Payment)
			}
		})
	}
}

func TestDecideOperatorTopup(t *testing.T) {
	r := testRules(t)
	agent := &ledger.Account{ID: "ACA", Type: ledger.Agent, Balance: ledger.Balance{Available: 700}}
	clearing := ledger.Account{ID: "airtime_clearing:tel"}
	s := bookingSnapshot{Now: decideNow, Reference: "OPT-1", Key: "topup:OPT-1", Account: agent, System: clearing, NewID: "PAYGGGGGGG"}
	d := r.operatorTopup(s, "ACA", "254700000002", "tel", 2000)
	if d.Err != nil || !d.Insert || !d.KickAirtime || d.Payment.State != StateTopupPending || d.Transfer.Credit != clearing.ID {
		t.Fatalf("%+v", d)
	}
	s.Account = &ledger.Account{ID: "ACW", Type: ledger.Wallet}
	if d := r.operatorTopup(s, "ACW", "254700000002", "tel", 2000); !errors.Is(d.Err, ErrNotFound) {
		t.Fatalf("from a wallet: %v", d.Err)
	}
	s.Account, s.Prev = nil, &Payment{PayerAccount: "ACA", Amount: 2000, TargetMSISDN: "254700000003"}
	if d := r.operatorTopup(s, "ACA", "254700000002", "tel", 2000); !errors.Is(d.Err, ErrConflict) {
		t.Fatalf("the reference for another number: %v", d.Err)
	}
	if err := r.bookingRefused(*agent, ledger.ErrInsufficientFunds); !errors.Is(err, ErrInsufficientFund) ||
		err.Error() != "payswitch: insufficient funds: the agent's float has KES 7.00 available" {
		t.Fatalf("%v", err)
	}
	if err := r.bookingRefused(*agent, ledger.ErrAccountInactive); !errors.Is(err, ErrInvalid) {
		t.Fatalf("%v", err)
	}
}
