package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The checks a round ends with: the books, each wallet, each merchant, and every
// message owed.

// checkSet is the phones to check after round r: its own, the round before's (their
// silent payments expire now), and a sample of older ones.
func (h *harness) checkSet(r int) []*phone {
	var set, older []*phone
	for _, p := range h.phones {
		if p.round >= r-1 {
			set = append(set, p)
		} else {
			older = append(older, p)
		}
	}
	for _, i := range h.rng.Perm(len(older))[:min(len(older), 2*h.o.phones)] {
		set = append(set, older[i])
	}
	return set
}

// checkLedger checks the trial balance, then exports the ledger with the switch's own
// export command while it runs, and verifies the export.
func (h *harness) checkLedger(ctx context.Context, name string) error {
	tb, err := h.api.trialBalance(ctx)
	if err != nil {
		return fmt.Errorf("trial balance: %w", err)
	}
	if !tb.Balanced {
		return violated(invTrial, "GET /api/v1/ledger/trial-balance: %+v", tb)
	}
	out := filepath.Join(h.dir, "export-"+name)
	if text, err := h.srv.command(ctx, "export", "-config", h.srv.config, "-out", out); err != nil {
		return violated(invVerify, "payswitch export: %v\n%s", err, text)
	}
	if text, err := h.srv.command(ctx, "verify", out); err != nil {
		return violated(invVerify, "payswitch verify %s: %v\n%s", out, err, text)
	}
	return os.RemoveAll(out)
}

// readWallet reads a wallet's payments, its account, and its payments again, until the
// two reads of payments agree, so that the account belongs with them.
func (h *harness) readWallet(ctx context.Context, p *phone) (walletView, error) {
	for try := 0; try < 20; try++ {
		before, err := h.api.Payments(ctx, p.msisdn)
		if err != nil {
			return walletView{}, err
		}
		acct, err := h.api.Account(ctx, p.account)
		if err != nil {
			return walletView{}, err
		}
		after, err := h.api.Payments(ctx, p.msisdn)
		if err != nil {
			return walletView{}, err
		}
		if samePayments(before, after) {
			return walletView{acct: acct, pays: after}, nil
		}
	}
	return walletView{}, fmt.Errorf("%s: payments keep changing", p.msisdn)
}

// checkWallets reads and checks each phone of set, and each merchant of theirs.
func (h *harness) checkWallets(ctx context.Context, set []*phone) (map[*phone]walletView, error) {
	views := map[*phone]walletView{}
	for _, p := range set {
		v, err := h.readWallet(ctx, p)
		if err != nil {
			return nil, err
		}
		if err := checkWallet(p, v); err != nil {
			return nil, err
		}
		views[p] = v
	}
	seen := map[*merchant]bool{}
	for _, p := range set {
		if m := p.merchant; !seen[m] {
			seen[m] = true
			if err := h.checkMerchant(ctx, m, views); err != nil {
				return nil, err
			}
		}
	}
	return views, nil
}

// checkMerchant reads a merchant between two reads of its phones' payments and checks it.
func (h *harness) checkMerchant(ctx context.Context, m *merchant, views map[*phone]walletView) error {
	for try := 0; try < 20; try++ {
		mv := map[*phone]walletView{}
		for _, p := range m.phones {
			if v, ok := views[p]; ok && try == 0 {
				mv[p] = v
				continue
			}
			v, err := h.readWallet(ctx, p)
			if err != nil {
				return err
			}
			mv[p] = v
		}
		acct, err := h.api.Account(ctx, m.account)
		if err != nil {
			return err
		}
		stable := true
		for _, p := range m.phones {
			pays, err := h.api.Payments(ctx, p.msisdn)
			if err != nil {
				return err
			}
			stable = stable && samePayments(pays, mv[p].pays)
		}
		if stable {
			return checkMerchant(m, acct, mv)
		}
	}
	return fmt.Errorf("merchant %s: payments keep changing", m.code)
}

// checkDelivered checks that every payment of the views has its code message at the
// payer, and every completed one its receipt at the payer and its notice at the
// merchant, each within -receipt-wait of the moment it was owed or, when the switch
// was killed meanwhile, of the moment it was back: what the switch committed to send,
// it sends, a kill or not, and soon.
func (h *harness) checkDelivered(ctx context.Context, set []*phone, views map[*phone]walletView) (time.Duration, error) {
	var slowest time.Duration
	type owed struct {
		what, inv, to string
		pay           payment
		match         func(string) bool
		due           time.Time // the latest it may arrive
	}
	var todo []*owed
	for _, p := range set {
		for _, pay := range views[p].pays {
			if pay.Type != "merchant_payment" || h.delivered[pay.ID] {
				continue
			}
			id := pay.ID
			todo = append(todo, &owed{what: "code message", inv: invCodesSent, to: p.msisdn, pay: pay,
				match: func(t string) bool { return isOTPFor(t, id) }, due: h.due(pay.CreatedAt)})
			switch pay.State {
			case "completed":
				todo = append(todo,
					&owed{what: "receipt", inv: invDelivered, to: p.msisdn, pay: pay,
						match: func(t string) bool { return isReceipt(t, id) }, due: h.due(pay.UpdatedAt)},
					&owed{what: "merchant's notice", inv: invDelivered, to: p.merchant.msisdn, pay: pay,
						match: func(t string) bool { return isNotice(t, id) }, due: h.due(pay.UpdatedAt)})
			case "failed", "expired", "cancelled":
				// The payer is told it did not happen, and never that it did.
				if h.mail.has(p.msisdn, func(t string) bool { return isReceipt(t, id) }) {
					return 0, violated(invExactlyOnce, "%s: payment %s is %s, but the phone got its receipt", p.msisdn, id, pay.State)
				}
				state := pay.State
				todo = append(todo, &owed{what: "notice that it " + state, inv: invEnded, to: p.msisdn, pay: pay,
					match: func(t string) bool { st, ok := finalFor(t, id); return ok && st == state }, due: h.due(pay.UpdatedAt)})
			}
		}
	}
	for {
		var missing []*owed
		for _, o := range todo {
			at, ok := h.mail.first(o.to, o.match)
			if ok {
				slowest = max(slowest, at.Sub(o.due.Add(-h.o.receiptWait)))
			}
			switch {
			case !ok:
				missing = append(missing, o)
			case at.After(o.due):
				return slowest, violated(o.inv, "the %s of %s (%s, to %s) arrived %s after it was owed (the switch was up since %s); want within %s",
					o.what, o.pay.ID, o.pay.State, o.to, at.Sub(o.due.Add(-h.o.receiptWait)).Round(time.Millisecond),
					o.due.Add(-h.o.receiptWait).Format("15:04:05.000"), h.o.receiptWait)
			}
		}
		if len(missing) == 0 {
			break
		}
		now := time.Now()
		for _, o := range missing {
			if now.After(o.due) {
				return slowest, violated(o.inv, "the %s of %s (%s, to %s) never arrived; owed since %s, %s ago",
					o.what, o.pay.ID, o.pay.State, o.to, o.due.Add(-h.o.receiptWait).Format("15:04:05.000"),
					now.Sub(o.due.Add(-h.o.receiptWait)).Round(time.Millisecond))
			}
		}
		todo = missing
		select {
		case <-ctx.Done():
			return slowest, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, p := range set {
		for _, pay := range views[p].pays {
			// A payment still waiting may yet complete and owe more.
			if pay.State != "pending_otp" {
				h.delivered[pay.ID] = true
			}
		}
	}
	return slowest, nil
}

// due is the latest a message owed since t may arrive: -receipt-wait after t, or after
// the switch was back from a kill that came later.
func (h *harness) due(t time.Time) time.Time {
	from := t
	for _, o := range h.outages {
		if o.killed.After(t) && o.back.After(from) {
			from = o.back
		}
	}
	return from.Add(h.o.receiptWait)
}
