package main

import (
	"fmt"
	"slices"
	"strings"
)

// The invariants crashtest checks; a violation names one of them.
const (
	invSwitchUp    = "the switch comes back after every kill"
	invTrial       = "trial balance holds"
	invVerify      = "the ledger export verifies"
	invStates      = "payments are in the contract's states"
	invExactlyOnce = "every payment is completed exactly once or not debited at all"
	invHolds       = "holds match pending payments"
	invDeposits    = "a deposit reference credits once"
	invDelivered   = "every completed payment's receipt and notice are sent"
	invEnded       = "the payer is told when a payment fails, expires or is cancelled"
	invCodesSent   = "every payment's code message is sent"
	invCodeOnce    = "no code works twice"
	invAnswered    = "every message gets an answer"
	invRace        = "no data race in the switch"
)

// violation is a broken invariant: crashtest stops and exits 1 with it.
type violation struct {
	invariant string
	detail    string
}

func (v *violation) Error() string {
	return fmt.Sprintf("VIOLATION: %s: %s", v.invariant, v.detail)
}

func violated(invariant, format string, args ...any) *violation {
	return &violation{invariant: invariant, detail: fmt.Sprintf(format, args...)}
}

// walletView is a wallet's account and every payment of its number, read so that the
// two agree: the payments did not change while the account was read.
type walletView struct {
	acct account
	pays []payment
}

// merchantStates are the states a merchant payment may be in; it is never reversed
// here and only airtime is ever topup_pending.
var merchantStates = []string{"pending_otp", "completed", "failed", "expired", "cancelled"}

// checkWallet checks one wallet against what its phone did: its deposit, the
// payments' states, posted = deposit - completed, held = pending, and that only
// payments whose code the phone sent completed.
func checkWallet(p *phone, v walletView) error {
	if len(v.pays) >= paymentsLimit {
		return fmt.Errorf("crashtest: %s has %d payments, more than one page of the API; use fewer -attempts", p.msisdn, len(v.pays))
	}
	var deposits, completed, pending []payment
	var sumCompleted, sumPending int64
	for _, pay := range v.pays {
		switch pay.Type {
		case "deposit":
			if pay.State != "completed" || pay.Payee != p.account {
				return violated(invStates, "%s: deposit %s is %s to %s, want completed to %s", p.msisdn, pay.ID, pay.State, pay.Payee, p.account)
			}
			deposits = append(deposits, pay)
		case "merchant_payment":
			if !slices.Contains(merchantStates, pay.State) {
				return violated(invStates, "%s: payment %s is in state %q, not one of %v", p.msisdn, pay.ID, pay.State, merchantStates)
			}
			if pay.Payer != p.account || pay.Payee != p.merchant.account {
				return violated(invStates, "%s: payment %s from %s to %s, want from %s to %s",
					p.msisdn, pay.ID, pay.Payer, pay.Payee, p.account, p.merchant.account)
			}
			if a := p.byID[pay.ID]; a != nil && a.amount != pay.Amount {
				return violated(invExactlyOnce, "%s: payment %s is for %d, the phone asked for %d", p.msisdn, pay.ID, pay.Amount, a.amount)
			}
			switch pay.State {
			case "completed":
				completed = append(completed, pay)
				sumCompleted += pay.Amount
			case "pending_otp":
				pending = append(pending, pay)
				sumPending += pay.Amount
			}
		default:
			return violated(invStates, "%s: payment %s of type %q, which no phone asked for", p.msisdn, pay.ID, pay.Type)
		}
	}
	if len(deposits) != 1 || deposits[0].Amount != p.deposit {
		return violated(invDeposits, "%s: deposits %s, want one of %d (reference %s)", p.msisdn, describe(deposits), p.deposit, p.ref)
	}
	if len(pending) > 1 {
		return violated(invStates, "%s: %d payments wait for a code at once: %s", p.msisdn, len(pending), describe(pending))
	}
	if want := p.deposit - sumCompleted; v.acct.Balance.Posted != want {
		return violated(invExactlyOnce, "%s: posted balance %d, want deposit %d - completed %d = %d; completed: %s",
			p.msisdn, v.acct.Balance.Posted, p.deposit, sumCompleted, want, describe(completed))
	}
	if v.acct.Balance.Held != sumPending {
		return violated(invHolds, "%s: held %d, want %d, the sum of pending payments %s", p.msisdn, v.acct.Balance.Held, sumPending, describe(pending))
	}
	if b := v.acct.Balance; b.Available != b.Posted-b.Held {
		return violated(invHolds, "%s: available %d, want posted %d - held %d", p.msisdn, b.Available, b.Posted, b.Held)
	}
	for _, pay := range completed {
		if a := p.byID[pay.ID]; a == nil || !a.sentRight {
			return violated(invExactlyOnce, "%s: payment %s completed, but the phone never sent its code", p.msisdn, pay.ID)
		}
	}
	return nil
}

// checkMerchant checks that a merchant holds exactly what its phones' completed
// payments paid it.
func checkMerchant(m *merchant, acct account, views map[*phone]walletView) error {
	var sum int64
	n := 0
	for _, p := range m.phones {
		for _, pay := range views[p].pays {
			if pay.Type == "merchant_payment" && pay.State == "completed" && pay.Payee == m.account {
				sum += pay.Amount
				n++
			}
		}
	}
	if acct.Balance.Posted != sum || acct.Balance.Held != 0 {
		return violated(invExactlyOnce, "merchant %s: posted %d held %d, want posted %d (%d completed payments) held 0",
			m.code, acct.Balance.Posted, acct.Balance.Held, sum, n)
	}
	return nil
}

// checkUnmoved checks that nothing but time happened to a wallet between two views:
// the same payments, the same posted balance, no payment newly completed. A payment
// still waiting may have expired or failed meanwhile (a replayed code counts as a
// wrong one for it).
func checkUnmoved(p *phone, before, after walletView, what string) error {
	if after.acct.Balance.Posted != before.acct.Balance.Posted {
		return violated(invCodeOnce, "%s: posted balance went from %d to %d after %s",
			p.msisdn, before.acct.Balance.Posted, after.acct.Balance.Posted, what)
	}
	if len(after.pays) != len(before.pays) {
		return violated(invCodeOnce, "%s: %d payments became %d after %s", p.msisdn, len(before.pays), len(after.pays), what)
	}
	was := map[string]string{}
	for _, pay := range before.pays {
		was[pay.ID] = pay.State
	}
	for _, pay := range after.pays {
		old := was[pay.ID]
		if pay.State == old || old == "pending_otp" && (pay.State == "expired" || pay.State == "failed") {
			continue
		}
		return violated(invCodeOnce, "%s: payment %s went from %q to %q after %s", p.msisdn, pay.ID, old, pay.State, what)
	}
	return nil
}

// describe lists payments briefly for a message.
func describe(ps []payment) string {
	if len(ps) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %s %d", p.ID, p.State, p.Amount)
	}
	return b.String()
}

// samePayments reports whether two reads of a number's payments agree.
func samePayments(a, b []payment) bool {
	return slices.EqualFunc(a, b, func(x, y payment) bool { return x.ID == y.ID && x.State == y.State })
}
