// Package sessiondb keeps the sessions of a dialogue channel (USSD menus, IVR calls) in
// a PostgreSQL table, so that every switch node sharing the database can continue any
// session: a step may reach another node than the one before it.
//
// A session is a row: its key (the transport's session ID), the phone it belongs to, a
// sequence number in the order sessions were created, the time of its last step, a
// lease, and its state as an opaque blob that the channel encodes (see Writer and
// Reader). The channel owns its table and its migrations; the table must have this
// shape (name aside):
//
//	CREATE TABLE t (
//	    key        TEXT COLLATE "C" PRIMARY KEY,
//	    seq        BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
//	    phone      TEXT COLLATE "C" NOT NULL,
//	    seen       BIGINT NOT NULL,
//	    busy_until BIGINT NOT NULL,
//	    token      BIGINT NOT NULL,
//	    state      BYTEA NOT NULL);
//	CREATE INDEX t_phone ON t (phone, seq);
//	CREATE INDEX t_seen ON t (seen);
//
// A step holds its session by a lease, not by a row lock: Claim sets busy_until and a
// random token in one statement and returns the row; the step then runs (calling the
// engine, whose writes take connections of their own) without holding a connection or
// a transaction; Save writes the new state and frees the lease only if the token is
// still the one the claim set. A second step of the same session, on any node, finds it
// busy and waits (Acquire) until the first saves, as the session's mutex makes it wait
// in memory. Holding a row lock across the step instead would pin one of the pool's
// connections per step in progress while the engine's own writes wait for one (with as
// many steps as connections, none would finish), and a transaction that the database
// aborts to break a deadlock would be run again with its engine calls. A lease that a
// dead node held runs out after its length, and the session carries on elsewhere.
//
// Limits hold whatever outsiders dial: at most PerNumber sessions per phone (Create
// takes an advisory lock on the phone, so concurrent dials of one number see each
// other) and about Max in all: a new session removes those created Max or more
// sessions before it (by seq), so the table never holds more than Max committed
// sessions plus those being created at that moment. Both evict the oldest, never refuse
// the newcomer, and cost a bounded number of index look-ups per dial.
//
// Times are unix nanoseconds of the nodes' clocks, which must agree to well within a
// lease and a session timeout (NTP).
package sessiondb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/payswitch/payswitch/store"
)

// Options shape a Table.
type Options struct {
	Name      string // the table's name
	Max       int    // sessions in all (see the package doc)
	PerNumber int    // sessions of one phone
}

// Table is one channel's session table. It is safe for concurrent use.
type Table struct {
	db                          *store.DB
	name                        string
	max, perNumber              int
	evicted                     atomic.Int64
	claimSQL, peekSQL, saveSQL  string
	releaseSQL, dropSQL         string
	removeSQL, removeExpiredSQL string
	insertSQL, perNumberSQL     string
	windowSQL, sweepSQL         string
	countSQL, ofPhoneSQL        string
	lockSQL                     string

	// Wait pauses before the attempt-th look again at a busy session, and reports
	// whether to look again at all. Nil: Backoff.
	Wait func(ctx context.Context, attempt int) bool
}

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// New returns the table name of db; db must be on PostgreSQL.
func New(db *store.DB, o Options) (*Table, error) {
	if db == nil || db.Dialect() != store.Postgres {
		return nil, errors.New("sessiondb: needs a database on PostgreSQL")
	}
	if !identifier.MatchString(o.Name) || o.Max < 1 || o.PerNumber < 1 {
		return nil, fmt.Errorf("sessiondb: bad options %+v", o)
	}
	t := o.Name
	return &Table{
		db: db, name: t, max: o.Max, perNumber: o.PerNumber,
		claimSQL: `UPDATE ` + t + ` SET busy_until = ?3, token = ?4
			WHERE key = ?1 AND busy_until <= ?2 AND seen >= ?5
			RETURNING phone, seen, state`,
		peekSQL:          `SELECT busy_until, seen FROM ` + t + ` WHERE key = ?`,
		saveSQL:          `UPDATE ` + t + ` SET state = ?3, seen = ?4, busy_until = 0 WHERE key = ?1 AND token = ?2`,
		releaseSQL:       `UPDATE ` + t + ` SET busy_until = 0 WHERE key = ?1 AND token = ?2`,
		removeSQL:        `DELETE FROM ` + t + ` WHERE key = ?`,
		removeExpiredSQL: `DELETE FROM ` + t + ` WHERE key = ?1 AND seen < ?2 AND busy_until <= ?3`,
		dropSQL:          `DELETE FROM ` + t + ` WHERE key = ?1 AND token = ?2`,
		lockSQL:          `SELECT pg_advisory_xact_lock(hashtextextended(?, 0))`,
		insertSQL: `INSERT INTO ` + t + ` (key, phone, seen, busy_until, token, state)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (key) DO NOTHING RETURNING seq`,
		perNumberSQL: `DELETE FROM ` + t + ` WHERE seq IN (
			SELECT seq FROM ` + t + ` WHERE phone = ?1 ORDER BY seq DESC OFFSET ?2)`,
		windowSQL: `DELETE FROM ` + t + ` WHERE seq <= ?`,
		sweepSQL: `DELETE FROM ` + t + ` WHERE key IN (
			SELECT key FROM ` + t + ` WHERE seen < ?1 AND busy_until <= ?2 ORDER BY seen LIMIT ?3
			FOR UPDATE SKIP LOCKED) AND seen < ?1 AND busy_until <= ?2`,
		countSQL:   `SELECT count(*) FROM ` + t,
		ofPhoneSQL: `SELECT key FROM ` + t + ` WHERE phone = ? ORDER BY seq`,
	}, nil
}

// Row is a session as stored.
type Row struct {
	Phone string // the phone it belongs to, as the channel wrote it
	Seen  int64  // unix nanoseconds of its last step
	State []byte // the channel's encoding of the rest
}

// Status is what Claim found under a key.
type Status int

const (
	Claimed Status = iota // the row is the caller's until Save, Release or its lease ends
	Absent                // no session under the key
	Busy                  // another step holds it
	Expired               // idle since before the cutoff; not claimed
)

// Lease is a claim on a session: its key and the token that proves the claim.
type Lease struct {
	Key   string
	Token int64
}

// Claim takes the session under key for a step until leaseUntil (unix nanoseconds),
// unless it is busy at now or idle since before cutoff.
func (t *Table) Claim(ctx context.Context, key string, now, cutoff, leaseUntil int64) (Row, Lease, Status, error) {
	var r Row
	lease := Lease{Key: key, Token: rand.Int64()}
	status := Claimed
	err := t.db.Write(ctx, func(tx store.Tx) error {
		// The session may change between the claim and the look at why it failed (the
		// step that held it saves): then claim again.
		for range 3 {
			status = Claimed
			err := tx.QueryRowContext(ctx, t.claimSQL, key, now, leaseUntil, lease.Token, cutoff).Scan(&r.Phone, &r.Seen, &r.State)
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			var busyUntil, seen int64
			switch err := tx.QueryRowContext(ctx, t.peekSQL, key).Scan(&busyUntil, &seen); {
			case errors.Is(err, sql.ErrNoRows):
				status = Absent
			case err != nil:
				return err
			case busyUntil > now:
				status = Busy
			case seen < cutoff:
				status = Expired
			default:
				continue
			}
			return nil
		}
		status = Busy
		return nil
	})
	if err != nil {
		return Row{}, Lease{}, 0, fmt.Errorf("sessiondb: claim in %s: %w", t.name, err)
	}
	return r, lease, status, nil
}

// Acquire is Claim that waits, with Wait, while the session is busy. It returns Busy
// only when Wait gives up.
func (t *Table) Acquire(ctx context.Context, key string, now func() int64, cutoff, lease time.Duration) (Row, Lease, Status, error) {
	wait := t.Wait
	if wait == nil {
		wait = Backoff
	}
	for attempt := 1; ; attempt++ {
		n := now()
		r, l, st, err := t.Claim(ctx, key, n, n-int64(cutoff), n+int64(lease))
		if err != nil || st != Busy || !wait(ctx, attempt) {
			return r, l, st, err
		}
	}
}

// maxWaits bounds how often Backoff lets Acquire look again: about 20 s of waiting.
const maxWaits = 400

// Backoff waits 1, 2, 4 ... then 50 ms before each look again at a busy session, until
// ctx ends or maxWaits looks.
func Backoff(ctx context.Context, attempt int) bool {
	if attempt > maxWaits {
		return false
	}
	d := min(time.Millisecond<<min(attempt-1, 6), 50*time.Millisecond)
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// Save writes state as the session's, seen at seen, and frees it, if l still holds it;
// it reports whether it did (false: the session was evicted, ended or replaced
// meanwhile, or l ran out and another step took it).
func (t *Table) Save(ctx context.Context, l Lease, seen int64, state []byte) (bool, error) {
	return t.exec(ctx, "save", t.saveSQL, l.Key, l.Token, state, seen)
}

// Release frees the session of l unchanged.
func (t *Table) Release(ctx context.Context, l Lease) error {
	_, err := t.exec(ctx, "release", t.releaseSQL, l.Key, l.Token)
	return err
}

// Drop removes the session of l, if l still holds it.
func (t *Table) Drop(ctx context.Context, l Lease) (bool, error) {
	return t.exec(ctx, "drop", t.dropSQL, l.Key, l.Token)
}

// Remove removes the session under key, busy or not, and reports whether there was one.
func (t *Table) Remove(ctx context.Context, key string) (bool, error) {
	return t.exec(ctx, "remove", t.removeSQL, key)
}

// RemoveExpired removes the session under key if it is idle since before cutoff and
// not busy at now.
func (t *Table) RemoveExpired(ctx context.Context, key string, now, cutoff int64) (bool, error) {
	return t.exec(ctx, "remove", t.removeExpiredSQL, key, cutoff, now)
}

func (t *Table) exec(ctx context.Context, what, q string, args ...any) (bool, error) {
	var n int64
	err := t.db.Write(ctx, func(tx store.Tx) error {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sessiondb: %s in %s: %w", what, t.name, err)
	}
	return n > 0, nil
}

// Replace says what Create does with a session already under its key.
type Replace int

const (
	KeepExisting Replace = iota // create nothing
	ReplaceIdle                 // replace it if idle since before the cutoff and not busy
	ReplaceAny                  // replace it whatever its state (a transport's new dialogue)
)

// Create stores a new session under key for r.Phone, claimed by the returned lease
// until leaseUntil (0: not claimed), evicting the phone's oldest sessions past
// PerNumber and the oldest of all past Max. ok is false when a session stays under key
// (see Replace).
func (t *Table) Create(ctx context.Context, key string, r Row, replace Replace, now, cutoff, leaseUntil int64) (l Lease, ok bool, err error) {
	l = Lease{Key: key, Token: rand.Int64()}
	var evicted int64
	err = t.db.Write(ctx, func(tx store.Tx) error {
		evicted, ok = 0, false
		// Dials of one number, on any node, take turns here, so that each sees the
		// others' sessions when it counts.
		if _, err := tx.ExecContext(ctx, t.lockSQL, t.name+" "+r.Phone); err != nil {
			return err
		}
		switch replace {
		case ReplaceIdle:
			if _, err := tx.ExecContext(ctx, t.removeExpiredSQL, key, cutoff, now); err != nil {
				return err
			}
		case ReplaceAny:
			if _, err := tx.ExecContext(ctx, t.removeSQL, key); err != nil {
				return err
			}
		}
		var seq int64
		err := tx.QueryRowContext(ctx, t.insertSQL, key, r.Phone, r.Seen, leaseUntil, l.Token, r.State).Scan(&seq)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // taken
		}
		if err != nil {
			return err
		}
		ok = true
		res, err := tx.ExecContext(ctx, t.perNumberSQL, r.Phone, t.perNumber)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		evicted += n
		if seq > int64(t.max) {
			if res, err = tx.ExecContext(ctx, t.windowSQL, seq-int64(t.max)); err != nil {
				return err
			}
			n, _ = res.RowsAffected()
			evicted += n
		}
		return nil
	})
	if err != nil {
		return Lease{}, false, fmt.Errorf("sessiondb: create in %s: %w", t.name, err)
	}
	t.evicted.Add(evicted)
	return l, ok, nil
}

// sweepBatch is how many sessions one statement of Sweep removes at most, so that a
// sweep never holds many row locks for long.
const sweepBatch = 500

// Sweep removes the sessions idle since before cutoff and not busy at now, and returns
// how many. Several nodes may sweep at once: each takes rows the others have not locked.
func (t *Table) Sweep(ctx context.Context, now, cutoff int64) (int, error) {
	total := 0
	for {
		var n int64
		err := t.db.Write(ctx, func(tx store.Tx) error {
			res, err := tx.ExecContext(ctx, t.sweepSQL, cutoff, now, sweepBatch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, fmt.Errorf("sessiondb: sweep %s: %w", t.name, err)
		}
		total += int(n)
		if n < sweepBatch {
			return total, nil
		}
	}
}

// Count is how many sessions the table holds, ended ones included until swept.
func (t *Table) Count(ctx context.Context) (int, error) {
	var n int
	if err := t.db.Reader().QueryRowContext(ctx, t.countSQL).Scan(&n); err != nil {
		return 0, fmt.Errorf("sessiondb: count %s: %w", t.name, err)
	}
	return n, nil
}

// KeysOf returns the keys of phone's sessions, oldest first.
func (t *Table) KeysOf(ctx context.Context, phone string) ([]string, error) {
	rows, err := t.db.Reader().QueryContext(ctx, t.ofPhoneSQL, phone)
	if err != nil {
		return nil, fmt.Errorf("sessiondb: sessions of a phone in %s: %w", t.name, err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// Evicted is how many sessions this Table removed to keep the limits.
func (t *Table) Evicted() int64 { return t.evicted.Load() }
