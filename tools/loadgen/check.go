package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
)

// checkWorkers is how many API requests the checks make at once.
const checkWorkers = 16

// maxProblems is how many problems a check lists before it only counts.
const maxProblems = 10

// problems collects what the checks found wrong; safe for concurrent use.
type problems struct {
	mu    sync.Mutex // guards the fields below
	n     int
	shown []string
}

func (p *problems) addf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if len(p.shown) < maxProblems {
		p.shown = append(p.shown, fmt.Sprintf(format, args...))
	}
}

func (p *problems) err() error {
	if p.n == 0 {
		return nil
	}
	msg := strings.Join(p.shown, "\n  ")
	if p.n > len(p.shown) {
		msg += fmt.Sprintf("\n  … and %d more", p.n-len(p.shown))
	}
	return fmt.Errorf("%d check failures:\n  %s", p.n, msg)
}

// checkBooks compares the switch's books with what the phones saw:
//   - the trial balance is balanced;
//   - every wallet's posted balance is its deposit minus the payments its phone saw
//     confirmed, and nothing is left held unless a payment still waits for its code;
//   - the completed merchant payments GET /api/v1/payments lists for the phone are
//     exactly the confirmed ones, each once (when the phone has more payments than
//     one page holds, each confirmed one is fetched by ID instead);
//   - every till's balance is the sum of the payments confirmed to it.
//
// It returns an error listing the problems, or one that says why it could not check.
func checkBooks(ctx context.Context, c *client, phones []*phone, merchants []merchant, lg *logger) error {
	balanced, raw, err := c.trialBalance(ctx)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	var pr problems
	if !balanced {
		pr.addf("trial balance not balanced: %s", raw)
	}
	lg.printf("check: trial balance %s", raw)

	tillIDs := make(map[string]string, len(merchants)) // code -> account ID
	for _, m := range merchants {
		tillIDs[m.code] = m.id
	}
	var mu sync.Mutex // guards toTill
	toTill := make(map[string]int64, len(merchants))
	err = parallel(ctx, len(phones), checkWorkers, func(ctx context.Context, i int) error {
		p := phones[i]
		n, total := p.completed()
		mine := map[string]int64{}
		for id := range p.confirmed {
			if a, ok := p.known[id]; ok {
				mine[a.till] += a.amount
			}
			if k := p.confirmed[id]; k > 1 {
				pr.addf("%s: %d receipts for payment %s", p.msisdn, k, id)
			}
		}
		mu.Lock()
		for t, v := range mine {
			toTill[t] += v
		}
		mu.Unlock()

		acct, err := c.Account(ctx, p.walletID)
		if err != nil {
			return err
		}
		if want := p.funded - total; acct.Balance.Posted != want {
			pr.addf("%s: wallet posted %d, want %d (deposit %d minus %d confirmed payments of %d)",
				p.msisdn, acct.Balance.Posted, want, p.funded, n, total)
		}
		list, err := c.Payments(ctx, p.msisdn)
		if err != nil {
			return err
		}
		listed := map[string]int{}
		pending := 0
		for _, pm := range list {
			if pm.Type != "merchant_payment" || pm.Payer != p.walletID {
				continue
			}
			switch pm.State {
			case "completed":
				listed[pm.ID]++
				if listed[pm.ID] > 1 {
					pr.addf("%s: payment %s listed twice", p.msisdn, pm.ID)
				}
				if p.confirmed[pm.ID] == 0 && len(list) < paymentsLimit {
					pr.addf("%s: payment %s completed in the books but the phone saw no receipt", p.msisdn, pm.ID)
				}
				if a, ok := p.known[pm.ID]; ok && (a.amount != pm.Amount || tillIDs[a.till] != pm.Payee) {
					pr.addf("%s: payment %s is %d to %s in the books, the phone was asked %d to till %s",
						p.msisdn, pm.ID, pm.Amount, pm.Payee, a.amount, a.till)
				}
			case "pending_otp":
				pending++
			}
		}
		if acct.Balance.Held != 0 && pending == 0 {
			pr.addf("%s: %d held with no payment waiting for its code", p.msisdn, acct.Balance.Held)
		}
		for id := range p.confirmed {
			if _, ok := p.known[id]; !ok {
				pr.addf("%s: a receipt for payment %s, whose code SMS the phone never got", p.msisdn, id)
				continue
			}
			if listed[id] > 0 {
				continue
			}
			if len(list) < paymentsLimit {
				pr.addf("%s: payment %s confirmed to the phone but not completed in its list", p.msisdn, id)
				continue
			}
			pm, err := c.Payment(ctx, id)
			if err != nil {
				return err
			}
			if pm.State != "completed" || pm.Payer != p.walletID {
				pr.addf("%s: payment %s confirmed to the phone but is %s, payer %s", p.msisdn, id, pm.State, pm.Payer)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	err = parallel(ctx, len(merchants), checkWorkers, func(ctx context.Context, i int) error {
		m := merchants[i]
		acct, err := c.Account(ctx, m.id)
		if err != nil {
			return err
		}
		if acct.Balance.Posted != toTill[m.code] {
			pr.addf("till %s: posted %d, want %d, the sum of the payments confirmed to it", m.code, acct.Balance.Posted, toTill[m.code])
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	if err := pr.err(); err != nil {
		return err
	}
	return nil
}
