package payswitch

import (
	"errors"
	"fmt"
	"time"

	"github.com/payswitch/payswitch/ledger"
)

// bookingSnapshot is what deciding an operator's booking (a deposit, an airtime top-up
// from an agent's float) looks at, as read inside the write.
type bookingSnapshot struct {
	Now       time.Time
	Reference string   // the operator's idempotency reference, checked
	Key       string   // the booking's request key: "deposit:<ref>", "topup:<ref>"
	Prev      *Payment // the payment booked earlier under Key, or nil
	Account   *ledger.Account
	System    ledger.Account // the system account on the other side (cash, the carrier's clearing)
	NewID     string         // the new payment's ID
	// Room is what a deposit is checked against: the account's posted balance and, for
	// a wallet, its tier (contract section 14's max_balance).
	Room payeeRoom
}

// deposit decides a deposit of amount to the account named id: a transfer from the
// switch's cash float and a completed payment, and an SMS with the new balance to an
// account with a number. The same reference again returns the first deposit; with another
// account or amount it is ErrConflict.
func (r *rules) deposit(s bookingSnapshot, id string, amount int64) Decision {
	if p := s.Prev; p != nil {
		if p.PayeeAccount != id || p.Amount != amount {
			return Decision{Err: fmt.Errorf("%w: reference %q was used for another deposit", ErrConflict, s.Reference)}
		}
		return Decision{Outcome: Outcome{Payment: p}}
	}
	a := s.Account
	if a == nil || a.Type.IsSystem() {
		return Decision{Err: fmt.Errorf("%w: account %q", ErrNotFound, id)}
	}
	if over, limit := r.overCap(s.Room, amount); over {
		return Decision{Err: r.balanceCapError(s.Room, amount, limit, "nothing was deposited")}
	}
	p := &Payment{ID: s.NewID, Type: DepositPayment, Channel: ChannelAPI, State: StateCompleted,
		PayerAccount: s.System.ID, PayeeAccount: a.ID, PayeeName: a.Name, PayeeCode: a.Code,
		PayeeMSISDN: a.MSISDN, Amount: amount, Currency: r.cfg.Currency, Reference: s.Reference,
		CreatedAt: s.Now, UpdatedAt: s.Now}
	d := Decision{Payment: p, Insert: true, RequestKey: s.Key, Outcome: Outcome{Payment: p},
		Transfer: &ledger.TransferRequest{Key: s.Key, Debit: s.System.ID, Credit: a.ID, Amount: amount,
			PaymentID: p.ID, Kind: string(DepositPayment)}}
	for _, m := range r.sms(a.MSISDN, "deposit", p.ID, "", false) {
		m.Key, m.Vars, m.Balance = "deposit_notice", r.vars(p), balanceRef{Account: a.ID, Var: "balance"}
		d.Messages = append(d.Messages, m)
	}
	return d
}

// operatorTopup decides an operator's top-up of amount of airtime for number to, sold by
// carrier, from the float of the agent account named from: a transfer to the carrier's
// clearing account and a payment left for the airtime resolver. The same reference
// again returns the first top-up; with other details it is ErrConflict.
func (r *rules) operatorTopup(s bookingSnapshot, from, to, carrier string, amount int64) Decision {
	if p := s.Prev; p != nil {
		if p.PayerAccount != from || p.Amount != amount || p.TargetMSISDN != to {
			return Decision{Err: fmt.Errorf("%w: reference %q was used for another top-up", ErrConflict, s.Reference)}
		}
		return Decision{Outcome: Outcome{Payment: p}}
	}
	a := s.Account
	if a == nil || a.Type != ledger.Agent {
		return Decision{Err: fmt.Errorf("%w: agent account %q", ErrNotFound, from)}
	}
	p := &Payment{ID: s.NewID, Type: AirtimePayment, Channel: ChannelAPI, State: StateTopupPending,
		PayerAccount: a.ID, PayeeAccount: s.System.ID, PayeeName: carrier, TargetMSISDN: to,
		Carrier: carrier, Amount: amount, Currency: r.cfg.Currency, Reference: s.Reference,
		CreatedAt: s.Now, UpdatedAt: s.Now}
	return Decision{Payment: p, Insert: true, RequestKey: s.Key, KickAirtime: true, Outcome: Outcome{Payment: p},
		Transfer: &ledger.TransferRequest{Key: s.Key, Debit: a.ID, Credit: s.System.ID, Amount: amount,
			PaymentID: p.ID, Kind: string(AirtimePayment)}}
}

// bookingRefused is the operator's error for a booking from or to account a that the
// ledger refused with err.
func (r *rules) bookingRefused(a ledger.Account, err error) error {
	switch {
	case errors.Is(err, ledger.ErrInsufficientFunds):
		return fmt.Errorf("%w: the agent's float has %s available", ErrInsufficientFund, r.money(a.Balance.Available))
	case errors.Is(err, ledger.ErrAccountInactive):
		return fmt.Errorf("%w: account %s is not active", ErrInvalid, a.ID)
	}
	return err
}
