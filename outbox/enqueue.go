package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/payswitch/payswitch/internal/mask"
	"github.com/payswitch/payswitch/store"
)

// Enqueue adds m as a queued message inside tx, the caller's store.Write, and returns its
// ID. Call Kick on the Outbox after the Write returns so a waiting worker wakes up.
// It checks that Kind is sms or call, To is a phone number (digits, optional leading
// '+') and an SMS has text. The text is stored as given; Outbox.Enqueue can seal it.
//
// The package's Enqueue has no clock: a zero CreatedAt is stamped with time.Now. It is
// for tools and tests that have no Outbox; the switch enqueues through its Outbox, whose
// clock stamps the message.
//
// It does not know which database tx is on, and learns a new message's ID as SQLite
// gives it (LastInsertId), or on PostgreSQL, which does not, with a statement more.
func Enqueue(ctx context.Context, tx store.Tx, m Message) (int64, error) {
	return enqueue(ctx, tx, m, time.Now, nil, "", false)
}

// Enqueue is the package's Enqueue, except that an Outbox made by NewSealed stores the
// text of a one-time-code message (Purpose "otp") encrypted, so the code is never in
// the database in clear. A zero CreatedAt is the Outbox's clock's now.
func (o *Outbox) Enqueue(ctx context.Context, tx store.Tx, m Message) (int64, error) {
	return enqueue(ctx, tx, m, o.now, o.seal(), o.db.Dialect(), false)
}

// seal is how o's Enqueues seal a text: sealText, or nil when o stores texts as given.
func (o *Outbox) seal() func(Message) (string, error) {
	if o.sealer == nil {
		return nil
	}
	return o.sealText
}

// enqueue is both Enqueues and EnqueueThen: now stamps a message without CreatedAt, seal
// (nil: none) encrypts the texts that carry a code, d is tx's database ("": not known).
// leased writes the message sending, its first attempt leased until m.NextAttemptAt
// (a fresh message, fresh.go), instead of queued.
func enqueue(ctx context.Context, tx store.Tx, m Message, now func() time.Time,
	seal func(Message) (string, error), d store.Dialect, leased bool) (int64, error) {
	if m.Kind == "" {
		m.Kind = KindSMS
	}
	if err := validate(m); err != nil {
		return 0, err
	}
	meta := ""
	if len(m.Meta) > 0 {
		b, err := json.Marshal(m.Meta)
		if err != nil {
			return 0, fmt.Errorf("outbox: meta: %w", err)
		}
		meta = string(b)
	}
	text, sealed := m.Text, false
	if seal != nil && sealable(m) {
		var err error
		if text, err = seal(m); err != nil {
			return 0, err
		}
		sealed = true
	}
	created := m.CreatedAt
	if created.IsZero() {
		created = now()
	}
	// The flags are written as the integers they are stored as, which SQLite made of
	// Go's bools by itself and PostgreSQL does not.
	state, attempts := StateQueued, 0
	if leased {
		state, attempts = StateSending, 1
	}
	args := []any{m.Kind, m.To, m.From, text, m.PaymentID, m.Purpose, meta, flag(m.RequestReceipt),
		micros(m.NextAttemptAt), micros(created), micros(created), flag(sealed), state, attempts}
	if d == store.Postgres {
		// PostgreSQL has no LastInsertId; RETURNING costs it nothing more. SQLite
		// buffers RETURNING rows in a temporary table, so it keeps LastInsertId.
		var id int64
		if err := tx.QueryRowContext(ctx, insertMessageSQL+` RETURNING id`, args...).Scan(&id); err != nil {
			return 0, fmt.Errorf("outbox: enqueue %s to %s: %w", m.Kind, mask.MSISDN(m.To), err)
		}
		return id, nil
	}
	res, err := tx.ExecContext(ctx, insertMessageSQL, args...)
	if err != nil {
		return 0, fmt.Errorf("outbox: enqueue %s to %s: %w", m.Kind, mask.MSISDN(m.To), err)
	}
	id, err := res.LastInsertId()
	if err != nil && d == "" {
		// Not SQLite: a PostgreSQL identity's last value in this session is the row's.
		err = tx.QueryRowContext(ctx, `SELECT lastval()`).Scan(&id)
	}
	if err != nil {
		return 0, fmt.Errorf("outbox: enqueue %s to %s: %w", m.Kind, mask.MSISDN(m.To), err)
	}
	return id, nil
}

// insertMessageSQL queues a message: args kind, to, from, text, payment, purpose, meta,
// request_receipt, next_attempt_at, created_at, updated_at, sealed, state, attempts.
const insertMessageSQL = `INSERT INTO messages (kind, to_addr, from_addr, text, payment_id, purpose,
		meta, request_receipt, next_attempt_at, created_at, updated_at, sealed, state, attempts)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// flag is b as stored: 1 or 0.
func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

func validate(m Message) error {
	if m.Kind != KindSMS && m.Kind != KindCall {
		return fmt.Errorf("%w: kind %q: want sms or call", ErrInvalid, m.Kind)
	}
	to := strings.TrimPrefix(m.To, "+")
	if len(to) < 3 || len(to) > 20 || strings.Trim(to, "0123456789") != "" {
		return fmt.Errorf("%w: recipient %q is not a phone number", ErrInvalid, mask.MSISDN(m.To))
	}
	if m.Kind == KindSMS && m.Text == "" {
		return fmt.Errorf("%w: sms to %s has no text", ErrInvalid, mask.MSISDN(m.To))
	}
	return nil
}
