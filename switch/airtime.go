package payswitch

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/store"
)

// Airtime is how the engine reaches the carriers' airtime APIs. The engine calls it
// outside any transaction, with the payment ID as the reference: carriers treat a
// repeated reference as the same request, so asking again never credits twice.
type Airtime interface {
	// Carrier names the carrier that sells airtime for msisdn.
	Carrier(msisdn string) (name string, ok bool)
	// Credit asks the carrier to credit the airtime (first attempt).
	Credit(ctx context.Context, carrier string, r AirtimeRequest) AirtimeResult
	// Resolve asks the carrier what became of an earlier request, re-sending it if the
	// carrier never saw it.
	Resolve(ctx context.Context, carrier string, r AirtimeRequest) AirtimeResult
}

// AirtimeRequest is one top-up as the carrier sees it.
type AirtimeRequest struct {
	Reference string // the payment ID
	MSISDN    string
	Amount    int64
	Currency  string
}

// AirtimeOutcome is what a carrier said.
type AirtimeOutcome string

// Carrier answers. Unknown means no definite answer yet (timeout, 5xx, circuit open).
const (
	AirtimeSuccess AirtimeOutcome = "success"
	AirtimeFailed  AirtimeOutcome = "failed"
	AirtimeUnknown AirtimeOutcome = "unknown"
)

// AirtimeResult is a carrier's answer.
type AirtimeResult struct {
	Outcome          AirtimeOutcome
	CarrierReference string
	Reason           string
}

// airtimeBackoff is how long a top-up with no definite answer waits before the carrier is
// asked again: 2 s doubling to 5 minutes. The payment stays topup_pending meanwhile, its
// money in the carrier's clearing account, neither credited nor lost.
func airtimeBackoff(attempts int) time.Duration {
	d := 2 * time.Second
	for i := 1; i < attempts && d < 5*time.Minute; i++ {
		d *= 2
	}
	return min(d, 5*time.Minute)
}

// carrierFor is the carrier that sells airtime for msisdn, if airtime is configured.
func (e *Engine) carrierFor(msisdn string) (string, bool) {
	if e.airtime == nil {
		return "", false
	}
	return e.airtime.Carrier(msisdn)
}

func (e *Engine) kickAirtime() {
	select {
	case e.airtimeKick <- struct{}{}:
	default:
	}
}

// RunAirtime asks carriers to credit the airtime of every topup_pending payment until ctx
// ends: at once after a confirmation, on start for what was pending before a restart,
// and again with backoff while a carrier gives no definite answer.
func (e *Engine) RunAirtime(ctx context.Context) error {
	if e.airtime == nil {
		<-ctx.Done()
		return nil
	}
	for {
		if err := e.ResolveAirtime(ctx); err != nil && ctx.Err() == nil {
			e.log.Error().Err(err).Msg("airtime resolver failed; retrying")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-e.after(time.Second):
		case <-e.airtimeKick:
		}
	}
}

// ResolveAirtime makes one pass over the top-ups that are due and returns when each has
// had its carrier call and the outcome is committed.
func (e *Engine) ResolveAirtime(ctx context.Context) error {
	if e.airtime == nil {
		return nil
	}
	var due []*Payment
	var err error
	if e.pg {
		due, err = e.claimTopups(ctx)
	} else {
		due, err = scanPayments(e.db.Reader().QueryContext(ctx, `SELECT `+paymentColumns+` FROM payments
		WHERE state = 'topup_pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT 64`,
			e.now().UnixMicro()))
	}
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(due))
	for i, p := range due {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.resolveTopup(ctx, p)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// topupLease is how long a node's claim of a due top-up keeps other nodes from asking
// its carrier too (PostgreSQL): longer than a carrier call takes. A node that dies
// holding claims leaves them to the others once it has passed.
const topupLease = 2 * time.Minute

// claimTopupsSQL claims, for one node, the top-ups due at ?1 until ?2: the rows other
// nodes are claiming are skipped, not waited for, and a claimed row is due again only
// once its lease has passed; the carrier's answer then sets its next attempt.
const claimTopupsSQL = `UPDATE payments SET next_attempt_at = ?2
	WHERE id IN (SELECT id FROM payments WHERE state = 'topup_pending' AND next_attempt_at <= ?1
		ORDER BY next_attempt_at LIMIT 64 FOR UPDATE SKIP LOCKED)
	RETURNING ` + paymentColumns

// claimTopups is ResolveAirtime's list of due top-ups on PostgreSQL, where every node
// runs the resolver: each is claimed by one node, which alone asks its carrier.
func (e *Engine) claimTopups(ctx context.Context) ([]*Payment, error) {
	var due []*Payment
	err := e.db.Write(ctx, func(tx store.Tx) error {
		now := e.now()
		var err error
		due, err = scanPayments(tx.QueryContext(ctx, claimTopupsSQL, now.UnixMicro(), now.Add(topupLease).UnixMicro()))
		return err
	})
	return due, err
}

// scanPayments reads the payments of rows to the end and closes them.
func scanPayments(rows *sql.Rows, err error) ([]*Payment, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Payment
	for rows.Next() {
		p, err := scanPayment(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (e *Engine) resolveTopup(ctx context.Context, p *Payment) error {
	req := AirtimeRequest{Reference: p.ID, MSISDN: p.TargetMSISDN, Amount: p.Amount, Currency: p.Currency}
	var res AirtimeResult
	if p.Attempts == 0 {
		res = e.airtime.Credit(ctx, p.Carrier, req)
	} else {
		res = e.airtime.Resolve(ctx, p.Carrier, req)
	}
	return e.write(ctx, func(o *op) error {
		cur, err := o.snap.payment(p.ID)
		if err != nil {
			return err
		}
		_, err = o.apply(e.rules.topupOutcome(cur, res, o.now))
		return err
	})
}

// OperatorTopup is an operator's request to top up a number's airtime from an agent's float.
type OperatorTopup struct {
	From      string // the agent account paying
	MSISDN    string
	Amount    int64
	Reference string // idempotency key
}

// OperatorTopup moves the amount from the agent's float to the carrier's clearing account
// and leaves the crediting to the airtime resolver. Repeating a reference returns the
// first top-up; the same reference with other details is ErrConflict.
func (e *Engine) OperatorTopup(ctx context.Context, r OperatorTopup) (*Payment, error) {
	ref, err := checkReference(r.Reference)
	if err != nil {
		return nil, err
	}
	if r.Amount <= 0 || r.Amount > maxAmount {
		return nil, fmt.Errorf("%w: amount: a positive number of minor units", ErrInvalid)
	}
	to, err := e.Normalize(r.MSISDN)
	if err != nil {
		return nil, fmt.Errorf("%w: msisdn: %q is not a phone number", ErrInvalid, r.MSISDN)
	}
	carrier, ok := e.carrierFor(to)
	if !ok {
		return nil, fmt.Errorf("%w: no carrier sells airtime for %s", ErrInvalid, Mask(to))
	}
	var p *Payment
	err = e.write(ctx, func(o *op) error {
		s, err := o.booking(ref, "topup:"+ref, r.From, func() (ledger.Account, error) {
			return o.lt.SystemAccount(o.ctx, ledger.AirtimeClearing, carrier, e.cfg.Currency)
		})
		if err != nil {
			return err
		}
		d := e.rules.operatorTopup(s, r.From, to, carrier, r.Amount)
		if d.Err != nil {
			return d.Err
		}
		out, err := o.apply(d)
		if err != nil {
			return e.rules.bookingRefused(*s.Account, err)
		}
		p = out.Payment
		return nil
	})
	return p, err
}

// Reversal is an operator's request to undo a completed payment.
type Reversal struct {
	Reason    string
	Reference string // idempotency key
	Amount    int64  // optional; when given it must be the whole amount paid
}

// Reverse undoes a completed payment with a new, opposite ledger transfer (history is
// never edited), moves it to reversed and tells both parties. Repeating a reference
// returns the reversed payment and changes nothing. It refuses a payment that is not
// completed, an amount other than what was paid, and a payee who has spent the money.
func (e *Engine) Reverse(ctx context.Context, id string, r Reversal) (*Payment, error) {
	ref, err := checkReference(r.Reference)
	if err != nil {
		return nil, err
	}
	reason, err := checkReason(r.Reason, true)
	if err != nil {
		return nil, err
	}
	var p *Payment
	err = e.write(ctx, func(o *op) error {
		cur, err := o.snap.payment(id)
		if err != nil {
			return err
		}
		if err := o.loadItems(cur); err != nil { // its merchant hears of it, with its items
			return err
		}
		d := e.rules.reverse(reverseSnapshot{Payment: cur, Reference: ref, Reason: reason, Amount: r.Amount})
		if d.Err != nil {
			return d.Err
		}
		out, err := o.apply(d)
		if err != nil {
			// The ledger's refusals, and a reference another reversal holds, are the
			// operator's errors; which is the rules' to say. (A reference taken needs no
			// balance, and on PostgreSQL its statement ended the transaction's reads.)
			if errors.Is(err, errReversalRefTaken) {
				return e.rules.reversalRefused(cur, ref, err, 0)
			}
			payee, aerr := o.lt.Account(o.ctx, cur.PayeeAccount)
			if aerr != nil {
				return err
			}
			return e.rules.reversalRefused(cur, ref, err, payee.Balance.Available)
		}
		p = out.Payment
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// airtimeDelivered is the refusal to reverse p, airtime the carrier delivered, with what
// the operator does instead.
func airtimeDelivered(p *Payment) error {
	ref := ""
	if p.Reference != "" {
		ref = " (reference " + p.Reference + ")"
	}
	return fmt.Errorf("%w: the carrier %s confirmed the airtime of %s%s, which stays on the phone; ask the carrier "+
		"to reverse it, and if it does, compensate the payer with a deposit of reference AIRTIME-REFUND-%s",
		ErrAirtimeDelivered, p.Carrier, p.ID, ref, p.ID)
}

// checkReference validates an operator's idempotency reference.
func checkReference(s string) (string, error) {
	ref := strings.TrimSpace(s)
	if ref == "" || len(ref) > 64 || !printable(ref) || strings.ContainsFunc(ref, unicode.IsSpace) {
		return "", fmt.Errorf("%w: reference: 1 to 64 printable characters without spaces", ErrInvalid)
	}
	return ref, nil
}
