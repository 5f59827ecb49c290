package payswitch

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/store"
)

// ErrRefundLimit refuses a refund of a payment that has maxRefundsPerPayment refunds.
var ErrRefundLimit = errors.New("payswitch: too many refunds of one payment")

// RefundRequest is a merchant's (or an operator's) request to give part or all of a
// completed merchant payment back to its payer (contract section 11).
type RefundRequest struct {
	PaymentID string
	// Merchant is the merchant account of the key that asks; "" for an operator. A
	// payment the merchant did not receive is not found.
	Merchant  string
	Amount    int64  // minor units, at most what is left of the payment
	Reference string // the idempotency key, unique per merchant
	Reason    string // optional, up to 200 printable characters
	Actor     string // who asks: the merchant key's or the operator token's name
}

// Refund is one refund of a payment, as the refunds table keeps it.
type Refund struct {
	ID         string
	PaymentID  string
	Merchant   string // the merchant account that paid it back
	Amount     int64
	Currency   string
	Reference  string
	Reason     string
	Actor      string
	TransferID string // the ledger transfer (kind refund) that moved it
	CreatedAt  time.Time
}

// RefundView is a refund as the API shows it.
type RefundView struct {
	ID         string `json:"id"`
	PaymentID  string `json:"payment_id"`
	Merchant   string `json:"merchant"`
	Amount     int64  `json:"amount"`
	Currency   string `json:"currency"`
	Reference  string `json:"reference"`
	Reason     string `json:"reason,omitempty"`
	Actor      string `json:"actor"`
	TransferID string `json:"transfer_id"`
	CreatedAt  string `json:"created_at"`
}

// View is rf as the API shows it.
func (rf *Refund) View() RefundView {
	return RefundView{ID: rf.ID, PaymentID: rf.PaymentID, Merchant: rf.Merchant, Amount: rf.Amount,
		Currency: rf.Currency, Reference: rf.Reference, Reason: rf.Reason, Actor: rf.Actor,
		TransferID: rf.TransferID, CreatedAt: rf.CreatedAt.UTC().Format(time.RFC3339Nano)}
}

// Refund gives part or all of a completed merchant payment back to its payer from the
// merchant's available balance, as a new ledger transfer of kind refund, and tells the
// payer by SMS and the merchant's system by payment.refunded. created is false when the
// reference was used before for the same refund: the first refund is the answer and
// nothing more changes. Refusals: ErrNotFound (no such payment, or another merchant's),
// ErrInvalid, ErrNotRefundable (not a completed merchant payment), ErrRefundTooMuch (more
// than is left), ErrInsufficientFund (the merchant's available balance is short),
// ErrRefundLimit, ErrConflict (the reference was used for another refund).
func (e *Engine) Refund(ctx context.Context, q RefundRequest) (_ *Refund, created bool, err error) {
	if !ValidPaymentID(q.PaymentID) {
		return nil, false, fmt.Errorf("%w: no payment %s", ErrNotFound, q.PaymentID)
	}
	if q.Amount <= 0 || q.Amount > maxAmount {
		return nil, false, fmt.Errorf("%w: amount: a positive number of minor units", ErrInvalid)
	}
	if q.Reference, err = checkReference(q.Reference); err != nil {
		return nil, false, err
	}
	if q.Reason, err = checkReason(q.Reason, false); err != nil {
		return nil, false, err
	}
	if q.Actor == "" {
		q.Actor = "operator"
	}
	var rf *Refund
	err = e.write(ctx, func(o *op) error {
		s, err := o.refundSnapshot(q)
		if err != nil {
			return err
		}
		d, answer := e.rules.decideRefund(s)
		if d.Err != nil {
			return d.Err
		}
		rf, created = answer, d.Refund != nil
		if !created {
			return nil
		}
		if _, err := o.apply(d); err != nil {
			return e.rules.refundRefused(q, err)
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return rf, created, nil
}

// refundSnapshot reads what deciding q looks at: the payment with its items (the
// merchant's system hears of it with them); when q may see it, the refund made before
// under q's reference, and, unless there is one, the merchant's account and the
// payment's count of refunds.
func (o *op) refundSnapshot(q RefundRequest) (refundSnapshot, error) {
	s := refundSnapshot{Now: o.now, Request: q}
	p, err := o.snap.payment(q.PaymentID)
	switch {
	case errors.Is(err, ErrNotFound):
		return s, nil
	case err != nil:
		return s, err
	}
	s.Payment = p
	if q.Merchant != "" && p.PayeeAccount != q.Merchant {
		return s, nil // another merchant's: nothing more of it is read
	}
	if err := o.loadItems(p); err != nil {
		return s, err
	}
	if s.Prev, s.Refunds, err = o.snap.refundState(p.ID, p.PayeeAccount, q.Reference); err != nil || s.Prev != nil {
		return s, err
	}
	a, err := o.lt.Account(o.ctx, p.PayeeAccount)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
	case err != nil:
		return s, err
	default:
		s.Merchant = &a
	}
	s.NewID = o.e.newPaymentID()
	return s, nil
}

// applyRefund writes the refund rf: books its transfer, keeps its row and raises the
// payment's refunded, which the payment's row checks never passes its amount. It
// returns the transfer, whose balances the refund's messages show.
func (o *op) applyRefund(p *Payment, rf *refundEffect) (ledger.Transfer, error) {
	t, err := o.lt.Transfer(o.ctx, rf.Transfer)
	if err != nil {
		return ledger.Transfer{}, err // refundRefused names the ledger's refusals
	}
	rf.Refund.TransferID = t.ID
	r := rf.Refund
	if _, err := o.tx.ExecContext(o.ctx, `INSERT INTO refunds (id, payment_id, merchant, amount, currency,
		reference, reason, actor, transfer_id, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)`,
		r.ID, r.PaymentID, r.Merchant, r.Amount, r.Currency, r.Reference, r.Reason, r.Actor, r.TransferID,
		r.CreatedAt.UnixMicro()); err != nil {
		if store.IsUniqueViolation(err, "refunds.id") {
			return ledger.Transfer{}, fmt.Errorf("insert refund %s: %w", r.ID, errPaymentIDTaken)
		}
		return ledger.Transfer{}, fmt.Errorf("insert refund %s: %w", r.ID, err)
	}
	// The WHERE on what the decision saw makes a refund that lost a race fail instead of
	// adding to a total it did not check.
	res, err := o.tx.ExecContext(o.ctx, `UPDATE payments SET refunded = refunded + ?1, updated_at = ?2
		WHERE id = ?3 AND state = ?4 AND refunded = ?5`, r.Amount, o.now.UnixMicro(), p.ID, StateCompleted, rf.Before)
	if err != nil {
		return ledger.Transfer{}, fmt.Errorf("refund %s of %s: %w", r.ID, p.ID, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ledger.Transfer{}, fmt.Errorf("refund %s of %s: %w", r.ID, p.ID, ErrStateChanged)
	}
	p.Refunded, p.UpdatedAt = rf.Before+r.Amount, o.now
	id, payment, merchant, amount, actor := r.ID, p.ID, r.Merchant, r.Amount, r.Actor
	o.after = append(o.after, func() {
		o.e.log.Info().Str("refund", id).Str("payment", payment).Str("merchant", merchant).
			Int64("amount", amount).Str("actor", actor).Msg("payment refunded")
	})
	return t, nil
}

// Refunds lists the refunds of payment id, oldest first (at most maxRefundsPerPayment).
// A merchant ("" for an operator) sees only the refunds of its own payments: another's
// payment is ErrNotFound, as is one that does not exist.
func (e *Engine) Refunds(ctx context.Context, id, merchant string) ([]*Refund, error) {
	p, err := e.Payment(ctx, id)
	if err != nil {
		return nil, err
	}
	if merchant != "" && p.PayeeAccount != merchant {
		return nil, fmt.Errorf("%w: no payment %s", ErrNotFound, id)
	}
	rows, err := e.db.Reader().QueryContext(ctx, `SELECT `+refundColumns+` FROM refunds
		WHERE payment_id = ? ORDER BY created_at, id LIMIT ?`, id, maxRefundsPerPayment)
	if err != nil {
		return nil, fmt.Errorf("refunds of %s: %w", id, err)
	}
	defer rows.Close()
	out := []*Refund{}
	for rows.Next() {
		rf, err := scanRefund(rows)
		if err != nil {
			return nil, fmt.Errorf("refunds of %s: %w", id, err)
		}
		out = append(out, rf)
	}
	return out, rows.Err()
}

const refundColumns = `id, payment_id, merchant, amount, currency, reference, reason, actor, transfer_id, created_at`

func scanRefund(r rowScanner) (*Refund, error) {
	var rf Refund
	var created int64
	if err := r.Scan(&rf.ID, &rf.PaymentID, &rf.Merchant, &rf.Amount, &rf.Currency, &rf.Reference, &rf.Reason,
		&rf.Actor, &rf.TransferID, &created); err != nil {
		return nil, err
	}
	rf.CreatedAt = time.UnixMicro(created).UTC()
	return &rf, nil
}

// refundState reads the refund merchant made under reference (nil if none) and how many
// refunds payment has.
func (q sqliteSnapshots) refundState(payment, merchant, reference string) (*Refund, int, error) {
	prev, err := scanRefund(q.tx.QueryRowContext(q.ctx, `SELECT `+refundColumns+` FROM refunds
		WHERE merchant = ? AND reference = ?`, merchant, reference))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		prev = nil
	case err != nil:
		return nil, 0, fmt.Errorf("refund %s: %w", reference, err)
	}
	var n int
	if err := q.tx.QueryRowContext(q.ctx, `SELECT count(*) FROM refunds WHERE payment_id = ?`, payment).Scan(&n); err != nil {
		return nil, 0, fmt.Errorf("refunds of %s: %w", payment, err)
	}
	return prev, n, nil
}

// migrationRefunds is contract section 11's refunds: one row a refund of a payment, its
// reference unique per merchant (the ledger's key of its transfer is made of the same
// two), listed by payment. The payment's refunded is their sum, kept on the payment.
const migrationRefunds = `
CREATE TABLE refunds (
	id          TEXT PRIMARY KEY,
	payment_id  TEXT NOT NULL REFERENCES payments (id),
	merchant    TEXT NOT NULL,  -- the merchant account that paid it back
	amount      INTEGER NOT NULL CHECK (amount > 0),
	currency    TEXT NOT NULL,
	reference   TEXT NOT NULL,
	reason      TEXT NOT NULL DEFAULT '',
	actor       TEXT NOT NULL,  -- the merchant key's or the operator token's name
	transfer_id TEXT NOT NULL,  -- the ledger transfer, kind refund
	created_at  INTEGER NOT NULL,
	UNIQUE (merchant, reference)
) STRICT;
CREATE INDEX refunds_by_payment ON refunds (payment_id, created_at);
`
