// Package otp issues and checks the one-time codes that confirm payments.
//
// A code is drawn from crypto/rand and stored only as an HMAC-SHA256 digest keyed by the
// switch's secret and bound to the payment (ID, payer, amount, currency, payee), so the
// database never holds a code in clear and a code cannot confirm any other payment, from
// any other number, for any other amount. otp knows payments only by ID: the engine calls
// it inside its own store transaction, so a code's state and the payment's state commit
// together.
//
// Rules: a code is valid while now < expiresAt (Config.TTL after it was issued); it works
// once; after Config.MaxAttempts wrong codes for a payment it is dead; Resend replaces it
// at most Config.MaxResends times, at least Config.ResendInterval apart. Wrong attempts
// count per payment, not per code: a resend does not give a guesser fresh tries.
package otp

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/payswitch/payswitch/store"
)

// Errors returned by otp.
var (
	// ErrAlreadyIssued: Issue for a payment that already has a code (use Resend).
	ErrAlreadyIssued = errors.New("otp: a code was already issued for this payment")
	// ErrResendLimit: the payment has had Config.MaxResends new codes already.
	ErrResendLimit = errors.New("otp: no more codes can be sent for this payment")
	// ErrResendTooSoon: the last code went out less than Config.ResendInterval ago.
	ErrResendTooSoon = errors.New("otp: a new code was sent too recently")
	// ErrNoCode: Resend for a payment without a live code (none issued, used or dead).
	ErrNoCode = errors.New("otp: no active code for this payment")
	// ErrBadConfig: NewIssuer got a Config or secret outside the allowed range.
	ErrBadConfig = errors.New("otp: bad configuration")
	// ErrBadSecret: a secret (file or config) that is malformed or too short.
	ErrBadSecret = errors.New("otp: bad secret")
	// ErrBadEvent: RecordEvent got an unknown event name or no time.
	ErrBadEvent = errors.New("otp: bad auth event")
)

// Defaults for the zero fields of Config, as in the contract's config.yaml.
const (
	DefaultDigits         = 6
	DefaultTTL            = 5 * time.Minute
	DefaultMaxAttempts    = 3
	DefaultMaxResends     = 3
	DefaultResendInterval = 30 * time.Second

	// MinSecretLen is the shortest HMAC key NewIssuer accepts, in bytes.
	MinSecretLen = 16
)

// Schema holds otp's tables. Times in otp_codes are Unix microseconds (UTC), like the
// engine's, so expiry compares integers; auth_events keeps readable RFC 3339 times
// because auditors read it.
//
// otp_codes has one row per payment: a resend overwrites the digest, so the old code is
// dead the moment the new one exists. dead_reason says why a dead code died (exhausted,
// expired or killed), which Check reports.
var Schema = store.Schema{Component: "otp", Migrations: []string{`
CREATE TABLE otp_codes (
	payment_id  TEXT PRIMARY KEY,
	digest      BLOB NOT NULL,
	issued_at   INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	attempts    INTEGER NOT NULL DEFAULT 0,
	resends     INTEGER NOT NULL DEFAULT 0,
	state       TEXT NOT NULL CHECK (state IN ('active', 'used', 'dead')),
	dead_reason TEXT NOT NULL DEFAULT '' CHECK (dead_reason IN ('', 'exhausted', 'expired', 'killed'))
) STRICT;

CREATE TABLE auth_events (
	seq           INTEGER PRIMARY KEY,
	time          TEXT NOT NULL,
	payment_id    TEXT NOT NULL,
	msisdn_masked TEXT NOT NULL,
	channel       TEXT NOT NULL,
	event         TEXT NOT NULL CHECK (event IN ('issued', 'resent', 'delivered', 'delivery_failed',
		'wrong', 'confirmed', 'expired', 'exhausted', 'cancelled')),
	detail        TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX auth_events_by_payment ON auth_events (payment_id, seq);
`,
	// Migration 2 writes the CHECKs with OR instead of IN lists, which SQLite evaluated
	// by building a temporary B-tree for every row written (store.InAsOr says more).
	store.EditTableSQL("otp_codes",
		store.InAsOr(`state IN ('active', 'used', 'dead')`),
		store.InAsOr(`dead_reason IN ('', 'exhausted', 'expired', 'killed')`)) + "\n" +
		store.EditTableSQL("auth_events", store.InAsOr(`event IN ('issued', 'resent', 'delivered', 'delivery_failed',
		'wrong', 'confirmed', 'expired', 'exhausted', 'cancelled')`)),
	// Migration 3 makes otp_codes a WITHOUT ROWID table keyed by payment_id, not a rowid
	// table beside an automatic index of payment_id: issuing a code is one B-tree insert
	// instead of two, and checking or using it one seek instead of two. Payment IDs sort
	// by time, so a new code goes at the end. Nothing references otp_codes, so the table
	// is copied, dropped and made again without touching foreign keys. The copy goes back
	// in the old table's order, near enough that of payment_id, without a sort (which
	// would hold the whole table in memory: temp_store is MEMORY).
	`
CREATE TABLE otp_codes_rebuild AS SELECT * FROM otp_codes;
DROP TABLE otp_codes;
CREATE TABLE otp_codes (
	payment_id  TEXT PRIMARY KEY,
	digest      BLOB NOT NULL,
	issued_at   INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	attempts    INTEGER NOT NULL DEFAULT 0,
	resends     INTEGER NOT NULL DEFAULT 0,
	state       TEXT NOT NULL CHECK ((state = 'active' OR state = 'used' OR state = 'dead')),
	dead_reason TEXT NOT NULL DEFAULT '' CHECK ((dead_reason = '' OR dead_reason = 'exhausted' OR dead_reason = 'expired' OR dead_reason = 'killed'))
) STRICT, WITHOUT ROWID;
INSERT INTO otp_codes SELECT * FROM otp_codes_rebuild;
DROP TABLE otp_codes_rebuild;
`,
	migrationLockEvents,
}, Postgres: append(postgresMigrations, migrationLockEventsPostgres)}

// migrationLockEvents lets auth_events hold contract section 14's events (EventLocked,
// ...). Every row already satisfies the wider CHECK, so it is rewritten in place.
var migrationLockEvents = store.EditTableSQL("auth_events", store.Edit{Old: "event = 'cancelled')",
	New: "event = 'cancelled' OR event = 'locked' OR event = 'lock_refused' OR event = 'unlocked' OR event = 'blocked')"})

// migrationLockEventsPostgres is migrationLockEvents on PostgreSQL, where the CHECK has
// the name PostgreSQL gave it.
const migrationLockEventsPostgres = `
ALTER TABLE auth_events DROP CONSTRAINT auth_events_event_check;
ALTER TABLE auth_events ADD CONSTRAINT auth_events_event_check CHECK (event IN ('issued', 'resent', 'delivered',
	'delivery_failed', 'wrong', 'confirmed', 'expired', 'exhausted', 'cancelled',
	'locked', 'lock_refused', 'unlocked', 'blocked'));
`

// Config sets the code rules. Zero fields take the defaults above; Issuer.Config reports
// the values in force.
type Config struct {
	Digits         int           // code length, 4..10 (default 6)
	TTL            time.Duration // how long a code is valid (default 5m)
	MaxAttempts    int           // wrong codes per payment before the code dies (default 3)
	MaxResends     int           // new codes per payment after the first (default 3)
	ResendInterval time.Duration // least time between two codes for a payment (default 30s)
}

func (c Config) withDefaults() (Config, error) {
	if c.Digits == 0 {
		c.Digits = DefaultDigits
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxResends == 0 {
		c.MaxResends = DefaultMaxResends
	}
	if c.ResendInterval == 0 {
		c.ResendInterval = DefaultResendInterval
	}
	switch {
	case c.Digits < 4 || c.Digits > 10:
		return c, fmt.Errorf("%w: digits %d: want 4..10", ErrBadConfig, c.Digits)
	case c.TTL < 0:
		return c, fmt.Errorf("%w: ttl %v: want > 0", ErrBadConfig, c.TTL)
	case c.MaxAttempts < 0:
		return c, fmt.Errorf("%w: max attempts %d: want > 0", ErrBadConfig, c.MaxAttempts)
	case c.MaxResends < 0:
		return c, fmt.Errorf("%w: max resends %d: want > 0", ErrBadConfig, c.MaxResends)
	case c.ResendInterval < 0:
		return c, fmt.Errorf("%w: resend interval %v: want > 0", ErrBadConfig, c.ResendInterval)
	}
	return c, nil
}

// Binding is what a code is bound to: the same code with any field changed is wrong.
type Binding struct {
	PaymentID, Payer, Payee string
	Amount                  int64
	Currency                string
}

// Issuer issues and checks codes with one secret. It holds no mutable state and is safe
// for concurrent use; all state lives in the caller's transaction.
type Issuer struct {
	secret []byte
	cfg    Config
}

// NewIssuer returns an Issuer keyed by secret (at least MinSecretLen bytes), with cfg's
// zero fields defaulted. An out-of-range field is ErrBadConfig.
func NewIssuer(secret []byte, cfg Config) (*Issuer, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("%w: secret is %d bytes, want at least %d", ErrBadConfig, len(secret), MinSecretLen)
	}
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Issuer{secret: append([]byte(nil), secret...), cfg: c}, nil
}

// Config is the configuration in force, defaults applied.
func (i *Issuer) Config() Config { return i.cfg }

// Issue creates the first code for b.PaymentID, valid until expiresAt. A payment that
// already has a code (in any state) gets ErrAlreadyIssued.
func (i *Issuer) Issue(ctx context.Context, tx store.Tx, b Binding, now time.Time) (code string, expiresAt time.Time, err error) {
	d, err := i.Draw(b)
	if err != nil {
		return "", time.Time{}, err
	}
	if expiresAt, err = i.IssueDrawn(ctx, tx, d, now); err != nil {
		return "", time.Time{}, err
	}
	return d.Code, expiresAt, nil
}

// Drawn is a new code for a binding, drawn and digested before the transaction that
// stores it, so that the random draw and the HMAC need not run on the store's single
// writer. Code is for the message to the payer only; the database gets the digest.
type Drawn struct {
	Binding Binding
	Code    string
	digest  []byte
}

// Draw makes a new code for b without storing it; IssueDrawn stores it. A code that is
// never stored never works.
func (i *Issuer) Draw(b Binding) (Drawn, error) {
	code, err := i.newCode()
	if err != nil {
		return Drawn{}, err
	}
	return Drawn{Binding: b, Code: code, digest: i.digest(b, code)}, nil
}

// IssueDrawn is Issue for a code drawn beforehand by this Issuer's Draw: it stores d as
// the first code of d.Binding.PaymentID, valid until now + TTL.
func (i *Issuer) IssueDrawn(ctx context.Context, tx store.Tx, d Drawn, now time.Time) (expiresAt time.Time, err error) {
	expiresAt = now.Add(i.cfg.TTL)
	if err := i.IssueDrawnUntil(ctx, tx, d, now, expiresAt); err != nil {
		return time.Time{}, err
	}
	return expiresAt, nil
}

// IssueDrawnUntil is IssueDrawn for a code that is valid until expiresAt instead of for
// Config.TTL: the code of a merchant's request to pay lives as long as the request,
// which the merchant sets (minutes to a day). Every other rule is the same; a resend
// gives the new code Config.TTL.
func (i *Issuer) IssueDrawnUntil(ctx context.Context, tx store.Tx, d Drawn, now, expiresAt time.Time) error {
	return i.issueDrawn(ctx, tx, d, now, expiresAt, 0)
}

// IssueDrawnStepUp is IssueDrawnUntil for a payment graded high risk (contract section
// 14's step-up): the code takes one attempt only, its first wrong one kills it, as if
// MaxAttempts - 1 wrong ones had been made already. A resend carries that over.
func (i *Issuer) IssueDrawnStepUp(ctx context.Context, tx store.Tx, d Drawn, now, expiresAt time.Time) error {
	return i.issueDrawn(ctx, tx, d, now, expiresAt, max(i.cfg.MaxAttempts-1, 0))
}

func (i *Issuer) issueDrawn(ctx context.Context, tx store.Tx, d Drawn, now, expiresAt time.Time, attempts int) error {
	if len(d.digest) == 0 {
		return fmt.Errorf("otp: issue for %s: the code was not made by Draw", d.Binding.PaymentID)
	}
	if !expiresAt.After(now) {
		return fmt.Errorf("otp: issue for %s: expiry %v is not after %v", d.Binding.PaymentID, expiresAt, now)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO otp_codes (payment_id, digest, issued_at, expires_at, attempts, state)
		VALUES (?, ?, ?, ?, ?, 'active') ON CONFLICT (payment_id) DO NOTHING`,
		d.Binding.PaymentID, d.digest, now.UnixMicro(), expiresAt.UnixMicro(), attempts)
	if err != nil {
		return fmt.Errorf("otp: issue for %s: %w", d.Binding.PaymentID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("otp: issue for %s: %w", d.Binding.PaymentID, err)
	} else if n == 0 {
		return ErrAlreadyIssued
	}
	return nil
}

// Resend replaces the payment's active code with a new one (the old one stops working)
// and restarts the TTL, when Config.MayResend allows: otherwise ErrNoCode,
// ErrResendLimit or ErrResendTooSoon. A code that merely timed out can be resent. Wrong
// attempts carry over to the new code.
func (i *Issuer) Resend(ctx context.Context, tx store.Tx, b Binding, now time.Time) (code string, expiresAt time.Time, err error) {
	return i.replace(ctx, tx, b, now, false)
}

// Reissue is Resend for when the code could not be delivered (the SMSC reported the SMS
// undeliverable): see Config.MayResend.
func (i *Issuer) Reissue(ctx context.Context, tx store.Tx, b Binding, now time.Time) (code string, expiresAt time.Time, err error) {
	return i.replace(ctx, tx, b, now, true)
}

// replace is Resend (undeliverable false) and Reissue (true).
//
// The new code replaces the one that was read only if that one is still in place
// (same state, resends and issue time): two resends decided at once on two nodes from
// the same read would otherwise both pass MayResend and exceed its limits. On SQLite
// the one writer makes the first try succeed; on PostgreSQL the loser's UPDATE waits
// for the winner's commit, matches nothing, and the loser reads again and decides on
// what the winner left (too soon, or the limit).
func (i *Issuer) replace(ctx context.Context, tx store.Tx, b Binding, now time.Time, undeliverable bool) (code string, expiresAt time.Time, err error) {
	for try := 1; ; try++ {
		s := CodeState{Exists: true}
		var issuedAt int64
		err = tx.QueryRowContext(ctx, `SELECT state, issued_at, resends FROM otp_codes WHERE payment_id = ?`,
			b.PaymentID).Scan(&s.State, &issuedAt, &s.Resends)
		if errors.Is(err, sql.ErrNoRows) {
			s.Exists, err = false, nil
		}
		if err != nil {
			return "", time.Time{}, fmt.Errorf("otp: new code for %s: %w", b.PaymentID, err)
		}
		s.IssuedAt = time.UnixMicro(issuedAt)
		if err := i.cfg.MayResend(s, now, undeliverable); err != nil {
			return "", time.Time{}, err
		}
		if code == "" {
			if code, err = i.newCode(); err != nil {
				return "", time.Time{}, err
			}
		}
		expiresAt = now.Add(i.cfg.TTL)
		res, err := tx.ExecContext(ctx, `UPDATE otp_codes SET digest = ?, issued_at = ?, expires_at = ?,
			resends = resends + 1 WHERE payment_id = ? AND state = 'active' AND resends = ? AND issued_at = ?`,
			i.digest(b, code), now.UnixMicro(), expiresAt.UnixMicro(), b.PaymentID, s.Resends, issuedAt)
		if err != nil {
			return "", time.Time{}, fmt.Errorf("otp: new code for %s: %w", b.PaymentID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return "", time.Time{}, fmt.Errorf("otp: new code for %s: %w", b.PaymentID, err)
		} else if n == 1 {
			return code, expiresAt, nil
		}
		if try == maxTries {
			return "", time.Time{}, fmt.Errorf("otp: new code for %s: the code kept changing meanwhile", b.PaymentID)
		}
	}
}

// maxTries bounds how often a check or a resend reads a code again because another
// transaction changed it between its read and its write. Each retry means another
// writer committed a change to the code, and a code changes a bounded number of times
// (attempts, resends, one use or death), so the bound is only a guard.
const maxTries = 8

// Result is the outcome of Check. Exactly one of OK, Expired, Exhausted, Used and Missing
// is true, or none when the code was wrong and AttemptsLeft more may be tried.
type Result struct {
	OK           bool // the code is right: it is now used
	Expired      bool // the code's TTL has passed (now >= expiresAt); it is now dead
	Exhausted    bool // MaxAttempts wrong codes were given; the code is dead
	AttemptsLeft int  // wrong codes that may still be given before Exhausted
	Used         bool // the payment was confirmed earlier
	Missing      bool // no code was issued for the payment, or it was killed
}

// Check tries code against the payment's active code. A wrong code (including one with
// non-digits or the wrong length, or one bound to another payer, payee or amount) costs
// an attempt; the attempt, and the used or dead state that follows, persist when the
// caller's transaction commits. An expired or dead code is reported without comparing,
// so it reveals nothing about the code.
func (i *Issuer) Check(ctx context.Context, tx store.Tx, b Binding, code string, now time.Time) (Result, error) {
	return i.CheckAttempt(ctx, tx, i.Attempt(b, code), nil, now)
}

// Attempt is a code a user gave for a binding, digested before the transaction that
// checks it, so that the HMAC need not run on the store's single writer. It holds no code.
type Attempt struct {
	Binding    Binding
	wellFormed bool
	digest     []byte
}

// Attempt digests code for b, for CheckAttempt.
func (i *Issuer) Attempt(b Binding, code string) Attempt {
	a := Attempt{Binding: b, wellFormed: i.wellFormed(code)}
	if a.wellFormed {
		a.digest = i.digest(b, code)
	}
	return a
}

// Stored is a payment's code as read inside the caller's transaction, for a caller that
// reads the payment anyway and so can read its code in the same statement: it joins
// otp_codes (LEFT JOIN otp_codes AS c ON c.payment_id = ...), selects
// StoredColumns("c") and scans them into Dest. A payment without a code reads as no code.
type Stored struct {
	paymentID  sql.NullString
	digest     []byte
	expiresAt  sql.NullInt64
	attempts   sql.NullInt64
	state      sql.NullString
	deadReason sql.NullString
}

// StoredColumns are the columns of otp_codes, qualified by alias, that Stored.Dest scans.
func StoredColumns(alias string) string {
	return alias + ".payment_id, " + alias + ".digest, " + alias + ".expires_at, " + alias + ".attempts, " +
		alias + ".state, " + alias + ".dead_reason"
}

// StoredJoin is the join that brings a payment's code into a caller's query as alias,
// matched on paymentID (an SQL expression naming the payment's ID): with StoredColumns
// it is how a caller reads the code beside its own rows without naming otp's table.
func StoredJoin(alias, paymentID string) string {
	return "LEFT JOIN otp_codes AS " + alias + " ON " + alias + ".payment_id = " + paymentID
}

// codeState is the code as the rules look at it (no issue time or resends: a check needs
// neither).
func (s *Stored) codeState() CodeState {
	return CodeState{Exists: s.paymentID.Valid, State: s.state.String, DeadReason: s.deadReason.String,
		ExpiresAt: time.UnixMicro(s.expiresAt.Int64), Attempts: int(s.attempts.Int64)}
}

// Dest are the scan destinations for StoredColumns, in order.
func (s *Stored) Dest() []any {
	return []any{&s.paymentID, &s.digest, &s.expiresAt, &s.attempts, &s.state, &s.deadReason}
}

// Matches reports whether a is the code stored in s, whatever the code's state, without
// counting an attempt or changing anything: a number with two payments waiting for a
// code (its own and a merchant's request) has the code it gives checked (CheckAttempt)
// against the one it is the code of, and against both only when it is neither's. The
// comparison is in constant time.
func (s *Stored) Matches(a Attempt) bool {
	return a.wellFormed && s.paymentID.Valid && s.paymentID.String == a.Binding.PaymentID &&
		hmac.Equal(s.digest, a.digest)
}

// CheckAttempt is Check for a code digested beforehand by this Issuer's Attempt. stored,
// when not nil, is the code as the caller read it in this same transaction (see Stored);
// nil reads it here.
//
// Each write changes the code only if it is still as judged: active, with the same
// digest (a resend meanwhile replaced nothing under it) and, for expiry, still past its
// time. A write that matches nothing means another transaction changed the code after
// it was read (on PostgreSQL another node's check or resend, which this UPDATE waited
// for; on SQLite only a Stored read before earlier writes): the code is read again and
// judged again. So of two checks of the right code at once exactly one uses it and the
// other reports Used, and wrong attempts are counted one at a time up to MaxAttempts,
// never past it.
func (i *Issuer) CheckAttempt(ctx context.Context, tx store.Tx, a Attempt, stored *Stored, now time.Time) (Result, error) {
	id := a.Binding.PaymentID
	for try := 1; ; try++ {
		if stored == nil {
			stored = &Stored{}
			err := tx.QueryRowContext(ctx, `SELECT `+StoredColumns("c")+` FROM otp_codes AS c WHERE c.payment_id = ?`,
				id).Scan(stored.Dest()...)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return Result{}, fmt.Errorf("otp: check for %s: %w", id, err)
			}
		}
		if stored.paymentID.Valid && stored.paymentID.String != id {
			return Result{}, fmt.Errorf("otp: check for %s: given the code of %s", id, stored.paymentID.String)
		}
		res, done, err := i.write(ctx, tx, a, stored, now)
		if err != nil || done {
			return res, err
		}
		if try == maxTries {
			return Result{}, fmt.Errorf("otp: check for %s: the code kept changing meanwhile", id)
		}
		stored = nil
	}
}

// write judges a against stored and writes what the rules decided, on the condition
// that the code is still as stored; done false says it was not (nothing was written).
// The updates count from what is stored, so that a Stored read outside this
// transaction could neither revive a code nor lose an attempt.
func (i *Issuer) write(ctx context.Context, tx store.Tx, a Attempt, stored *Stored, now time.Time) (res Result, done bool, err error) {
	id := a.Binding.PaymentID
	res, action := i.cfg.Judge(stored.codeState(), now, func() bool {
		return a.wellFormed && hmac.Equal(stored.digest, a.digest)
	})
	var r sql.Result
	switch action {
	case NoWrite:
		return res, true, nil
	case MarkExpired:
		r, err = tx.ExecContext(ctx, `UPDATE otp_codes SET state = 'dead', dead_reason = 'expired'
			WHERE payment_id = ? AND state = 'active' AND expires_at <= ?`, id, now.UnixMicro())
	case MarkUsed:
		r, err = tx.ExecContext(ctx, `UPDATE otp_codes SET state = 'used'
			WHERE payment_id = ? AND state = 'active' AND digest = ?`, id, stored.digest)
	case CountWrong:
		var attempts int
		err = tx.QueryRowContext(ctx, `UPDATE otp_codes SET attempts = attempts + 1,
			state = CASE WHEN attempts + 1 >= ?2 THEN 'dead' ELSE state END,
			dead_reason = CASE WHEN attempts + 1 >= ?2 THEN 'exhausted' ELSE dead_reason END
			WHERE payment_id = ?1 AND state = 'active' AND digest = ?3 RETURNING attempts`,
			id, i.cfg.MaxAttempts, stored.digest).Scan(&attempts)
		if errors.Is(err, sql.ErrNoRows) {
			return Result{}, false, nil
		}
		if err != nil {
			return Result{}, false, fmt.Errorf("otp: check for %s: %w", id, err)
		}
		return i.cfg.AfterWrong(attempts), true, nil
	}
	if err != nil {
		return Result{}, false, fmt.Errorf("otp: check for %s: %w", id, err)
	}
	n, err := r.RowsAffected()
	if err != nil {
		return Result{}, false, fmt.Errorf("otp: check for %s: %w", id, err)
	}
	return res, n == 1, nil
}

// Kill makes the payment's active code dead because the payment was cancelled or
// expired; Check then reports Missing. A payment without an active code is left alone.
func (i *Issuer) Kill(ctx context.Context, tx store.Tx, paymentID string) error {
	return i.setDead(ctx, tx, paymentID, "killed")
}

func (i *Issuer) setDead(ctx context.Context, tx store.Tx, paymentID, reason string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE otp_codes SET state = 'dead', dead_reason = ?
		WHERE payment_id = ? AND state = 'active'`, reason, paymentID); err != nil {
		return fmt.Errorf("otp: %s code for %s: %w", reason, paymentID, err)
	}
	return nil
}

func (i *Issuer) wellFormed(code string) bool {
	if len(code) != i.cfg.Digits {
		return false
	}
	for j := 0; j < len(code); j++ {
		if code[j] < '0' || code[j] > '9' {
			return false
		}
	}
	return true
}

// newCode draws Config.Digits decimal digits from crypto/rand. Each digit comes from one
// random byte, and bytes >= 250 are thrown away, so every digit is exactly uniform
// (byte % 10 alone would favour 0..5).
func (i *Issuer) newCode() (string, error) {
	code := make([]byte, 0, i.cfg.Digits)
	var buf [16]byte
	for len(code) < i.cfg.Digits {
		if _, err := rand.Read(buf[:]); err != nil {
			return "", fmt.Errorf("otp: random: %w", err)
		}
		for _, b := range buf {
			if b >= 250 {
				continue
			}
			code = append(code, '0'+b%10)
			if len(code) == i.cfg.Digits {
				break
			}
		}
	}
	return string(code), nil
}

// digest is HMAC-SHA256 over the binding and the code. Each field is length-prefixed
// (uvarint) after a version label, so no two different bindings share an encoding
// whatever characters the fields hold (a plain "a|b" join would let "a|" + "b" collide
// with "a" + "|b").
func (i *Issuer) digest(b Binding, code string) []byte {
	m := hmac.New(sha256.New, i.secret)
	var n [binary.MaxVarintLen64]byte
	for _, f := range [...]string{"payswitch-otp-v1", b.PaymentID, b.Payer, strconv.FormatInt(b.Amount, 10), b.Currency, b.Payee, code} {
		m.Write(n[:binary.PutUvarint(n[:], uint64(len(f)))])
		m.Write([]byte(f))
	}
	return m.Sum(nil)
}
