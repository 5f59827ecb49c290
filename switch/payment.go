package payswitch

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/payswitch/payswitch/store"
)

// PaymentType is what a payment is for.
type PaymentType string

// Payment types of the contract.
const (
	MerchantPayment PaymentType = "merchant_payment"
	TransferPayment PaymentType = "transfer"
	AirtimePayment  PaymentType = "airtime"
	DepositPayment  PaymentType = "deposit"
)

// Channel is where a request came from.
type Channel string

// Channels of the contract.
const (
	ChannelSMS  Channel = "sms"
	ChannelUSSD Channel = "ussd"
	ChannelIVR  Channel = "ivr"
	ChannelAPI  Channel = "api"
)

// Payment is one payment as the engine keeps it.
type Payment struct {
	ID           string
	Type         PaymentType
	Channel      Channel
	State        State
	PayerMSISDN  string // the number that confirms it (empty for deposits)
	PayerAccount string
	PayeeAccount string
	PayeeName    string
	PayeeCode    string // merchant code, for merchant payments
	PayeeMSISDN  string // where the payee's notice goes; empty if none
	TargetMSISDN string // airtime recipient
	Amount       int64
	Currency     string
	Reference    string
	Reason       string // why it failed, expired or was reversed
	Carrier      string // airtime: the carrier that credits it
	TransferID   string // the ledger transfer that moved the money, once it moved
	ReversalRef  string // the operator's reference of its reversal
	Attempts     int    // airtime: carrier calls made so far
	Description  string // a merchant's request: its words about what is paid for
	// Store is the merchant's store whose till was paid (contract section 11), "" for
	// the merchant's own code.
	Store string
	// Refunded is what refunds gave back of Amount so far (never more than Amount).
	Refunded int64
	// Escrow marks a guaranteed payment: on confirmation its money goes to the escrow
	// account (in_escrow) until the payer releases it, disputes it, or ReleaseAt passes.
	Escrow    bool
	ReleaseAt time.Time // in_escrow: when it is released by itself
	// Fee is what the payer pays on top of Amount (contract section 14's tariff), fixed
	// when the payment is requested; it goes to the fees account in the same transaction.
	Fee int64
	// Risk is the grade the risk rules gave the request (low, normal, high, block), and
	// RiskRules the rules that fired, comma-separated, for disputes.
	Risk      string
	RiskRules string
	// Items is what the payment bought (a BUY, a request with items), when it was read
	// with them (Engine.Payment, Engine.Payments and wherever its view is sent).
	Items     []Item
	ExpiresAt time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// payeeLabel is how the payee is named to the payer: "Mama Mboga (55501)" for a merchant,
// a masked number for a person.
func (p *Payment) payeeLabel() string {
	switch {
	case p.Type == AirtimePayment:
		return "airtime for " + Mask(p.TargetMSISDN)
	case p.PayeeCode != "":
		return p.PayeeName + " (" + p.PayeeCode + ")"
	case p.PayeeMSISDN != "":
		if p.PayeeName != "" {
			return p.PayeeName + " " + Mask(p.PayeeMSISDN)
		}
		return Mask(p.PayeeMSISDN)
	}
	return p.PayeeName
}

const paymentColumns = `id, type, channel, state, payer_msisdn, payer_account, payee_account,
	payee_name, payee_code, payee_msisdn, target_msisdn, amount, currency, reference, reason,
	carrier, transfer_id, COALESCE(reversal_ref, ''), attempts, description, store, refunded, escrow, release_at,
	fee, risk, risk_rules, expires_at, created_at, updated_at`

type rowScanner interface{ Scan(dest ...any) error }

func scanPayment(r rowScanner) (*Payment, error) {
	var p Payment
	var exp, created, updated, release int64
	err := r.Scan(&p.ID, &p.Type, &p.Channel, &p.State, &p.PayerMSISDN, &p.PayerAccount,
		&p.PayeeAccount, &p.PayeeName, &p.PayeeCode, &p.PayeeMSISDN, &p.TargetMSISDN, &p.Amount,
		&p.Currency, &p.Reference, &p.Reason, &p.Carrier, &p.TransferID, &p.ReversalRef, &p.Attempts,
		&p.Description, &p.Store, &p.Refunded, &p.Escrow, &release, &p.Fee, &p.Risk, &p.RiskRules, &exp, &created, &updated)
	if err != nil {
		return nil, err
	}
	if release != 0 {
		p.ReleaseAt = time.UnixMicro(release).UTC()
	}
	if exp != 0 {
		p.ExpiresAt = time.UnixMicro(exp).UTC()
	}
	p.CreatedAt = time.UnixMicro(created).UTC()
	p.UpdatedAt = time.UnixMicro(updated).UTC()
	return &p, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// The engine's reads of one payment, by ID and by its payer's number while it waits.
const (
	paymentQuery = `SELECT ` + paymentColumns + ` FROM payments WHERE id = ?`
	pendingQuery = `SELECT ` + paymentColumns + ` FROM payments WHERE payer_msisdn = ? AND state = 'pending_otp'`
	// requestedQuery reads a number's merchant's request waiting for its code.
	requestedQuery = `SELECT ` + paymentColumns + ` FROM payments WHERE payer_msisdn = ? AND state = 'requested'`
)

func loadPayment(ctx context.Context, q querier, id string) (*Payment, error) {
	p, err := scanPayment(q.QueryRowContext(ctx, paymentQuery, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return p, err
}

// loadPending returns the payment of msisdn that waits for its code, or nil.
func loadPending(ctx context.Context, q querier, msisdn string) (*Payment, error) {
	p, err := scanPayment(q.QueryRowContext(ctx, pendingQuery, msisdn))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return p, err
}

// loadRequested returns msisdn's merchant's request waiting for its code, or nil.
func loadRequested(ctx context.Context, q querier, msisdn string) (*Payment, error) {
	p, err := scanPayment(q.QueryRowContext(ctx, requestedQuery, msisdn))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return p, err
}

// waitingPaymentsQuery reads a number's payments waiting for a code: its own first,
// then a merchant's request, each through its partial unique index.
const waitingPaymentsQuery = `SELECT ` + paymentColumns + ` FROM payments WHERE payer_msisdn = ?1 AND state = 'pending_otp'
	UNION ALL
	SELECT ` + paymentColumns + ` FROM payments WHERE payer_msisdn = ?1 AND state = 'requested'`

// loadWaiting returns msisdn's payments waiting for a code: none, one or both.
func loadWaiting(ctx context.Context, q querier, msisdn string) ([]*Payment, error) {
	rows, err := q.QueryContext(ctx, waitingPaymentsQuery, msisdn)
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

func insertPayment(ctx context.Context, tx store.Tx, p *Payment, requestKey string) error {
	var key any
	if requestKey != "" {
		key = requestKey
	}
	var exp, escrow int64 // escrow: an INTEGER 0/1, which pgx will not bind a Go bool to
	if !p.ExpiresAt.IsZero() {
		exp = p.ExpiresAt.UnixMicro()
	}
	if p.Escrow {
		escrow = 1
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO payments (id, type, channel, state, payer_msisdn,
		payer_account, payee_account, payee_name, payee_code, payee_msisdn, target_msisdn, amount,
		currency, reference, reason, carrier, transfer_id, expires_at, created_at, updated_at, request_key,
		description, store, escrow, fee, risk, risk_rules)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		p.ID, p.Type, p.Channel, p.State, p.PayerMSISDN, p.PayerAccount, p.PayeeAccount,
		p.PayeeName, p.PayeeCode, p.PayeeMSISDN, p.TargetMSISDN, p.Amount, p.Currency,
		p.Reference, p.Reason, p.Carrier, p.TransferID, exp, p.CreatedAt.UnixMicro(), p.UpdatedAt.UnixMicro(), key,
		p.Description, p.Store, escrow, p.Fee, p.Risk, p.RiskRules)
	if err != nil {
		// The insert's failure ends the write (on PostgreSQL it aborted the transaction):
		// a taken ID is drawn again in a new write.
		switch {
		case store.IsUniqueViolation(err, "payments.id"):
			return fmt.Errorf("insert payment %s: %w", p.ID, errPaymentIDTaken)
		case p.State == StateRequested && store.IsUniqueViolation(err, "payments.payer_msisdn"):
			// one_request_per_number: the snapshot's check comes first; this is the schema's.
			return fmt.Errorf("insert payment %s: %w", p.ID, ErrPayerBusy)
		}
		return fmt.Errorf("insert payment %s: %w", p.ID, err)
	}
	if err := insertItems(ctx, tx, p); err != nil {
		return err
	}
	return paymentEvents.Append(ctx, tx, p.ID, p.CreatedAt.UnixMicro(), "create", "", string(p.State), "")
}

// paymentEvents appends a payment's history, which nothing reads in a write: on SQLite
// a group's rows go in together before its COMMIT, on PostgreSQL each with the next
// statement (store.Appender).
var paymentEvents = store.NewAppender("payment_events", "payment_id", "time", "event", "from_state", "to_state", "detail")

// move applies ev to p through the state machine and persists the new state in tx. The
// WHERE on the old state makes a transition that lost a race fail instead of overwriting.
// transferID, when not empty, is the ledger transfer that moved p's money, recorded by
// the same statement.
func move(ctx context.Context, tx store.Tx, p *Payment, ev Event, reason, transferID string, now time.Time) error {
	next, err := Next(p.State, ev)
	if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `UPDATE payments SET state = ?1, reason = ?2, updated_at = ?3,
		transfer_id = CASE WHEN ?6 = '' THEN transfer_id ELSE ?6 END
		WHERE id = ?4 AND state = ?5`, next, reason, now.UnixMicro(), p.ID, p.State, transferID)
	if err != nil {
		return fmt.Errorf("payment %s %s: %w", p.ID, ev, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("payment %s %s: %w", p.ID, ev, ErrStateChanged)
	}
	if err := paymentEvents.Append(ctx, tx, p.ID, now.UnixMicro(), string(ev), string(p.State), string(next), reason); err != nil {
		return err
	}
	p.State, p.Reason, p.UpdatedAt = next, reason, now
	if transferID != "" {
		p.TransferID = transferID
	}
	return nil
}
