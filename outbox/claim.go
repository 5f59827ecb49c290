package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/payswitch/payswitch/store"
)

// ReleaseClaims hands back, due now, every message a worker had claimed (state sending).
// A switch calls it as it starts, before its workers run: the claims it finds were made
// by a process that died, and their leases would otherwise hold those messages (codes,
// receipts) back until they ran out. Only one process may deliver from a SQLite
// database at a time for this to be right; serve makes sure of that with a lock.
//
// On PostgreSQL other nodes deliver from the same database, and the claims a starting
// node finds are theirs, being sent: only those whose lease has run out are handed back
// (Claim would take them anyway), and those its own previous run left (SetNode). Any
// other dead node's claims come back when their leases run out.
func (o *Outbox) ReleaseClaims(ctx context.Context) (int64, error) {
	var n int64
	now := micros(o.now())
	q, args := releaseSQL, []any{now, now}
	if o.pg {
		q, args = pgReleaseSQL, []any{now, now, now, o.node}
	}
	err := o.db.Write(ctx, func(tx store.Tx) error {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("outbox: release claims: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// Claim leases up to limit due messages of kind ("" = any kind) for lease: queued ones
// whose NextAttemptAt has come and sending ones whose lease has run out (their worker
// died). They come back marked sending, with Attempts counting this claim and
// NextAttemptAt the lease deadline, oldest first. Claims are serialized by the store's
// single writer on SQLite, and skip the rows other claims lock on PostgreSQL (see
// postgres.go), so two workers never get the same message while its lease holds.
func (o *Outbox) Claim(ctx context.Context, kind string, limit int, lease time.Duration) ([]Message, error) {
	if lease <= 0 {
		return nil, fmt.Errorf("outbox: claim: lease %v: want > 0", lease)
	}
	limit = max(limit, 1)
	now := o.now()
	deadline := o.leaseUntil(now.Add(lease))
	chunks := claimChunks(limit)
	stmts := make([]string, len(chunks)) // here, not on the store's writer
	for i, c := range chunks {
		if o.pg {
			stmts[i] = pgClaimSQL(c)
		} else {
			stmts[i] = claimSQL(c)
		}
	}
	var ids []int64
	err := o.w.do(ctx, func(tx store.Tx) error {
		ids = ids[:0]
		for i, chunk := range chunks {
			// The limit is part of the statement's text, never a bound parameter: SQLite
			// plans with a LIMIT's value, and a statement whose bound LIMIT changed was
			// compiled again on its next run, which cost more than the claim.
			//
			// Only the IDs come back here: the writer is the switch's bottleneck, and
			// RETURNING every column cost it as much again as the update (SQLite buffers
			// RETURNING rows in a temporary table). The rows are read once committed.
			args := []any{deadline, micros(now), micros(now), kind, kind}
			if o.pg {
				args = append(args, o.node) // claimed_by: who holds the lease
			}
			rows, err := tx.QueryContext(ctx, stmts[i], args...)
			if err != nil {
				return err
			}
			got := 0
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				ids = append(ids, id)
				got++
			}
			if err := rows.Close(); err != nil {
				return err
			}
			if err := rows.Err(); err != nil {
				return err
			}
			if got < chunk {
				break // nothing more is due
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("outbox: claim %s: %w", kind, err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	// The claim is ours now, whatever ctx says: reading it must not fail because the
	// caller is stopping, or the messages would wait out their lease.
	claimed, broken, err := o.readClaim(context.WithoutCancel(ctx), ids, deadline)
	if err != nil {
		return nil, fmt.Errorf("outbox: claim %s: %w", kind, err)
	}
	// A text nobody can open will never be sent; retrying it would only block others.
	// If this fails, the message is claimed again when its lease runs out, and fails then.
	for _, m := range broken {
		o.Fail(context.WithoutCancel(ctx), m.ID, m.LastError)
	}
	return claimed, nil
}

// The statements that find messages through messages_due (TestDueQueriesUseTheIndex).
const (
	// releaseSQL gives back every claim: args now, now.
	releaseSQL = `UPDATE messages SET state = 'queued', next_attempt_at = ?, updated_at = ?
		WHERE state = 'sending'`
	// readClaimSQL reads the messages leased until a deadline, a claim's (readClaim).
	readClaimSQL = `SELECT ` + messageCols + ` FROM messages
		WHERE state = 'sending' AND next_attempt_at = ? ORDER BY id`
	// unsentSQL counts the queued, sending and failed messages (Unsent).
	unsentSQL = `SELECT count(*) FILTER (WHERE state = 'queued'), count(*) FILTER (WHERE state = 'sending'),
			(SELECT count(*) FROM messages WHERE state = 'failed')
		FROM messages WHERE ` + due
)

// claimSQL is Claim's statement for a chunk of limit messages: args deadline, now, now,
// kind, kind. The subquery walks messages_due in its order (next_attempt_at, then id)
// and stops after limit rows.
func claimSQL(limit int) string {
	return `UPDATE messages
		SET state = 'sending', attempts = attempts + 1, next_attempt_at = ?, updated_at = ?
		WHERE id IN (SELECT id FROM messages
			WHERE ` + due + ` AND next_attempt_at <= ? AND (? = '' OR kind = ?)
			ORDER BY next_attempt_at, id LIMIT ` + strconv.Itoa(limit) + `)
		RETURNING id`
}

// claimChunks splits a claim's limit into the LIMITs of its statements, largest first:
// powers of two up to 1024, so that a handful of statements serve every limit.
func claimChunks(limit int) []int {
	var chunks []int
	for ; limit > 1024; limit -= 1024 {
		chunks = append(chunks, 1024)
	}
	for c := 1024; c > 0; c /= 2 {
		if limit&c != 0 {
			chunks = append(chunks, c)
		}
	}
	return chunks
}

// leaseUntil returns the lease deadline t for a claim, in micros, moved on by as many
// microseconds as it takes to be unlike any other claim's of o: a claim finds its rows
// by their deadline (readClaim).
func (o *Outbox) leaseUntil(t time.Time) int64 {
	d := micros(t)
	for {
		last := o.lastLease.Load()
		next := max(d, last+1)
		if o.lastLease.CompareAndSwap(last, next) {
			return next
		}
	}
}

// readClaim reads the messages ids that a claim leased until deadline, oldest first,
// with their texts opened; those whose text cannot be opened come apart in broken,
// with LastError saying why. A message no longer leased until deadline is left out:
// meanwhile it was recorded as sent (a late acceptance of an earlier attempt).
func (o *Outbox) readClaim(ctx context.Context, ids []int64, deadline int64) (ms, broken []Message, err error) {
	// The claim's rows are found by their lease deadline (messages_due), not by an ID
	// list: json_each(?) made SQLite compile the statement again on every run. On
	// PostgreSQL another node's claim may have the same deadline: the IDs find them.
	q, args := readClaimSQL, []any{deadline}
	if o.pg {
		q, args = pgReadClaimSQL, []any{ids, deadline}
	}
	rows, err := o.db.Reader().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	ms = make([]Message, 0, len(ids))
	for rows.Next() {
		m, sealed, err := scanMessage(rows)
		if err != nil {
			return nil, nil, err
		}
		if !slices.Contains(ids, m.ID) { // another claim's, with the same deadline
			continue
		}
		if err := o.reveal(&m, sealed); err != nil {
			m.LastError = err.Error()
			broken = append(broken, m)
			continue
		}
		ms = append(ms, m)
	}
	return ms, broken, rows.Err()
}

// Retry puts a message that is sending back in the queue, due at next (zero: now plus
// Backoff of its attempts so far), remembering why it failed. Deciding when to give up
// (Fail) is the worker's policy.
func (o *Outbox) Retry(ctx context.Context, id int64, errText string, next time.Time) error {
	now, errText := o.now(), storableText(errText)
	err := o.w.do(ctx, func(tx store.Tx) error {
		state, attempts, err := stateTx(ctx, tx, o.pg, id)
		if err != nil {
			return err
		}
		if state != StateSending {
			return refuse(fmt.Errorf("%w: message %d is %s", ErrState, id, state))
		}
		due := next
		if due.IsZero() {
			due = now.Add(Backoff(attempts))
		}
		_, err = tx.ExecContext(ctx, `UPDATE messages SET state = 'queued', next_attempt_at = ?, last_error = ?,
			updated_at = ? WHERE id = ?`, micros(due), errText, micros(now), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("outbox: retry %d: %w", id, err)
	}
	return nil
}

// Fail gives up on a message that is queued or sending, for good.
func (o *Outbox) Fail(ctx context.Context, id int64, errText string) error {
	now, errText := micros(o.now()), storableText(errText)
	err := o.w.do(ctx, func(tx store.Tx) error {
		state, _, err := stateTx(ctx, tx, o.pg, id)
		if err != nil {
			return err
		}
		if state != StateQueued && state != StateSending {
			return refuse(fmt.Errorf("%w: message %d is %s", ErrState, id, state))
		}
		_, err = tx.ExecContext(ctx, `UPDATE messages SET state = 'failed', next_attempt_at = 0, last_error = ?,
			updated_at = ? WHERE id = ?`, errText, now, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("outbox: fail %d: %w", id, err)
	}
	return nil
}

// stateTx reads message id's state and attempts inside tx; an unknown id is refused
// with ErrNotFound. On PostgreSQL (pg) it locks the message first, for the write that
// follows to decide on a state no other node changes meanwhile.
func stateTx(ctx context.Context, tx store.Tx, pg bool, id int64) (state string, attempts int, err error) {
	q := `SELECT state, attempts FROM messages WHERE id = ?`
	if pg {
		q += ` FOR UPDATE`
	}
	err = tx.QueryRowContext(ctx, q, id).Scan(&state, &attempts)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, refuse(fmt.Errorf("%w: %d", ErrNotFound, id))
	}
	return state, attempts, err
}

// Backoff is how long to wait before attempt number attempt+1 after attempt failed:
// 1s doubling per attempt up to 5m, with "equal jitter" (a random point in the upper
// half) so that messages that failed together do not retry together.
func Backoff(attempt int) time.Duration {
	const base, ceiling = time.Second, 5 * time.Minute
	d := ceiling
	if attempt < 1 {
		attempt = 1
	}
	if attempt <= 10 { // 1s<<9 = 512s is already past the ceiling
		d = min(base<<(attempt-1), ceiling)
	}
	return d/2 + rand.N(d/2+1)
}
