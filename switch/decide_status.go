package payswitch

import (
	"fmt"
	"strings"
	"time"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
)

// statusSnapshot is what deciding an operator's freeze or reactivation looks at, as read
// inside the write.
type statusSnapshot struct {
	Now     time.Time
	Account *ledger.Account // nil: no such account
	// Waiting is the payment the account's number has waiting for its code, when the
	// account is its payer; nil otherwise.
	Waiting *Payment
}

// accountChange is one row of account_changes: a field of an account changed by an
// operator, and why.
type accountChange struct {
	Account  string
	Field    string // "status"
	Old, New string
	Reason   string
	Actor    string
}

// accountStatus decides an operator's change of an account's status: the ledger's status
// and a row of its history, written together. Freezing an account that has a payment
// waiting for its code also cancels that payment and releases its hold, in the same
// write: the post of a frozen payer's hold would be refused anyway, and the hold would
// otherwise keep the money out of reach until the code expired.
func (r *rules) accountStatus(s statusSnapshot, c AccountStatusChange) Decision {
	reason, reasonErr := checkReason(c.Reason, true)
	actor := strings.TrimSpace(c.Actor)
	switch {
	case c.Status != ledger.Frozen && c.Status != ledger.Active:
		return Decision{Err: fmt.Errorf("%w: status: want frozen or active, not %q", ErrInvalid, c.Status)}
	case reasonErr != nil:
		return Decision{Err: reasonErr}
	case actor == "":
		// Every change names who made it; a caller without a name is a bug, not an operator.
		return Decision{Err: fmt.Errorf("%w: actor: who makes the change is required", ErrInvalid)}
	}
	a := s.Account
	switch {
	case a == nil:
		return Decision{Err: fmt.Errorf("%w: account %q", ErrNotFound, c.Account)}
	case a.Type.IsSystem():
		return Decision{Err: fmt.Errorf("%w: %s is a system account, always active", ErrInvalid, a.ID)}
	case a.Status == ledger.Closed:
		return Decision{Err: fmt.Errorf("%w: %s is closed for good", ErrConflict, a.ID)}
	case a.Status == c.Status:
		return Decision{Err: fmt.Errorf("%w: %s is already %s", ErrConflict, a.ID, a.Status)}
	}
	d := Decision{Change: &accountChange{Account: a.ID, Field: "status", Old: string(a.Status), New: string(c.Status),
		Reason: reason, Actor: actor}}
	d.Also = statusNote(a, c.Status, actor)
	if p := s.Waiting; c.Status == ledger.Frozen && p != nil && p.PayerAccount == a.ID && p.State == StatePendingOTP {
		d.Payment, d.Release, d.Move, d.Reason = p, true, EvCancel, "account frozen by an operator"
		d.Auth = []authNote{{Channel: ChannelAPI, Event: "cancelled", Detail: "account frozen"}}
		// The payer hears why the code no longer works; the text shows what is left.
		for _, m := range r.sms(p.PayerMSISDN, "cancelled", p.ID, "", false) {
			m.Key, m.Vars = "cancelled", r.vars(p)
			m.Balance = balanceRef{Account: p.PayerAccount, Available: true, Var: "available"}
			d.Messages = append(d.Messages, m)
		}
	}
	return d
}

// statusNote is the authentication history's entry of an operator's freeze (a lock) or
// reactivation (an unlock) of a wallet with a number (contract section 14), as a
// decision of its own so that it names no payment the freeze cancels.
func statusNote(a *ledger.Account, status ledger.Status, actor string) []Decision {
	if a.MSISDN == "" {
		return nil
	}
	ev := otp.EventUnlocked
	if status == ledger.Frozen {
		ev = otp.EventLocked
	}
	return []Decision{{Auth: []authNote{{MSISDN: a.MSISDN, Channel: ChannelAPI, Event: ev, Detail: "by operator " + actor}}}}
}
