package smpp

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/payswitch/payswitch/store"
)

// The Gateway on PostgreSQL, where several switch nodes each run a Gateway on one
// database and an ESME's binds may be spread over them: its transmitter on one node, its
// receiver on another, or binds on both.
//
// Pins need nothing more: the last node to write one wins, and each node reads it when it
// routes an answer. An older pin never overwrites a newer one (the upsert is conditional
// on the time), so two nodes writing one number's pin at once leave the later one.
//
// Receipts are where the nodes must agree, because the node that records a receipt need
// not be the one that can send it:
//
//   - The hold moves into the row. The receipt of a whole MO is written while the handler
//     works, before its submit_sm_resp, with next_at at a hold deadline (receiptHold
//     ahead) instead of now, so that no node sends it ahead of the answer that gives its
//     id. Once the answer is written (Replied), the account's receipt sender makes it due
//     (next_at = now, only if next_at is still that deadline). If the node dies between
//     the two, the receipt becomes due at the deadline anyway: a receipt is never lost for
//     want of a release, at worst late.
//   - Sending is claimed row by row: the sender of each node where the account has a
//     session that can receive claims the due rows with FOR UPDATE SKIP LOCKED, moving
//     next_at a lease (receiptRetry) ahead, so that two nodes never send one receipt.
//     Rows it could not send (the session failed) are given back at once; rows the ESME
//     acknowledged are deleted, as on SQLite; those it refused wait receiptRetry. A node
//     that dies with a claim lets it go when the lease runs out, and the receipt is sent
//     again by whichever node the account is bound to, so a receipt may come twice after
//     a crash, never not at all (as on SQLite).
//   - A node learns of receipts recorded by other nodes by polling: every receiptPoll
//     while the account has a session that can receive on it (one indexed read of the
//     account's due rows), besides the wake-ups of its own binds and records.
const (
	// receiptHold is how long a receipt written before its submit_sm_resp waits at most
	// for the answer: beyond the handler's limit, so that a live node always releases it
	// first.
	receiptHold = 2 * handlerTimeout
	// receiptPollPostgres is how often a node looks for receipts that other nodes
	// recorded for an account bound to it.
	receiptPollPostgres = time.Second
)

// gatewayPostgresMigrations are GatewaySchema's tables on PostgreSQL, as SQLite's two
// migrations leave them: BIGINT times, text compared and ordered by bytes (COLLATE "C",
// as SQLite's BINARY: receipts of one microsecond go in message id order).
var gatewayPostgresMigrations = []string{`
CREATE TABLE smpp_server_pins (
	msisdn     TEXT COLLATE "C" PRIMARY KEY,
	system_id  TEXT COLLATE "C" NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE TABLE smpp_server_receipts (
	message_id   TEXT COLLATE "C" PRIMARY KEY,
	system_id    TEXT COLLATE "C" NOT NULL,
	msisdn       TEXT COLLATE "C" NOT NULL,
	dest         TEXT COLLATE "C" NOT NULL,
	part_set     TEXT COLLATE "C" NOT NULL,
	want         INTEGER NOT NULL,
	stat         TEXT COLLATE "C" NOT NULL,
	submitted_at BIGINT NOT NULL,
	done_at      BIGINT NOT NULL,
	next_at      BIGINT NOT NULL
);
CREATE INDEX smpp_server_receipts_owed ON smpp_server_receipts (system_id, next_at) WHERE stat <> '';
CREATE INDEX smpp_server_receipts_parts ON smpp_server_receipts (system_id, part_set) WHERE stat = '';
CREATE INDEX smpp_server_receipts_age ON smpp_server_receipts (submitted_at);
`}

// pinSQL writes a pin. On PostgreSQL the update is conditional on the time, so that of
// two nodes pinning one number at once the later MO's account stays.
func (g *Gateway) pinSQL() string {
	const upsert = `INSERT INTO smpp_server_pins (msisdn, system_id, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (msisdn) DO UPDATE SET system_id = excluded.system_id, updated_at = excluded.updated_at`
	if g.pg {
		return upsert + ` WHERE smpp_server_pins.updated_at <= excluded.updated_at`
	}
	return upsert
}

// ownNextAt is the next_at of the receipt of an MO being handled at now: now on SQLite,
// where the hold lives in memory (one process per file), the hold deadline on PostgreSQL.
func (g *Gateway) ownNextAt(now time.Time) int64 {
	if g.pg {
		return now.Add(receiptHold).UnixMicro()
	}
	return now.UnixMicro()
}

// heldReceipt is a receipt whose row waits at its hold deadline for Replied.
type heldReceipt struct {
	id    string
	until int64 // the row's next_at while held
}

// publishReleased makes the receipts released since the last call due, on PostgreSQL
// (on SQLite nothing is ever queued). After a failure they are kept for the next call
// (there are never more than the MO answered meanwhile); should the process end first,
// they become due at their hold deadline.
func (a *account) publishReleased(ctx context.Context) {
	a.mu.Lock()
	rs := a.released
	a.released = nil
	a.mu.Unlock()
	if len(rs) == 0 {
		return
	}
	g := a.g
	ids, until := make([]string, len(rs)), make([]int64, len(rs))
	for i, r := range rs {
		ids[i], until[i] = r.id, r.until
	}
	now := g.now().UnixMicro()
	err := g.db.Write(ctx, func(tx store.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE smpp_server_receipts r SET next_at = ?
			FROM unnest(?::text[], ?::bigint[]) AS h (id, until)
			WHERE r.message_id = h.id AND r.next_at = h.until`, now, ids, until)
		return err
	})
	if err != nil {
		a.mu.Lock()
		a.released = append(rs, a.released...)
		a.mu.Unlock()
		g.quiet.Event("receipt-release:"+a.systemID, g.log.Error()).Err(err).Str("system_id", a.systemID).
			Msg("smpp server receipts answered but not released; tried again")
	}
}

// claimReceipts is owedReceipts on PostgreSQL: it claims the account's next receipts due
// at now for this node until lease, oldest first, and returns them.
func (g *Gateway) claimReceipts(ctx context.Context, a *account, now, lease time.Time) ([]owedReceipt, error) {
	type claimed struct {
		r    owedReceipt
		next int64
	}
	var got []claimed
	err := g.db.Write(ctx, func(tx store.Tx) error {
		got = got[:0]
		rows, err := tx.QueryContext(ctx, `WITH due AS (
				SELECT message_id, next_at FROM smpp_server_receipts
				WHERE system_id = ? AND stat <> '' AND next_at <= ?
				ORDER BY next_at, message_id LIMIT ? FOR UPDATE SKIP LOCKED)
			UPDATE smpp_server_receipts r SET next_at = ? FROM due WHERE r.message_id = due.message_id
			RETURNING r.message_id, r.msisdn, r.dest, r.stat, r.submitted_at, r.done_at, due.next_at`,
			a.systemID, now.UnixMicro(), receiptBatch, lease.UnixMicro())
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c claimed
			var sub, done int64
			if err := rows.Scan(&c.r.id, &c.r.msisdn, &c.r.dest, &c.r.stat, &sub, &done, &c.next); err != nil {
				return err
			}
			c.r.submitted, c.r.done = time.UnixMicro(sub), time.UnixMicro(done)
			got = append(got, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	// RETURNING has no order: the claim's is the one they were due in.
	slices.SortFunc(got, func(x, y claimed) int {
		return cmp.Or(cmp.Compare(x.next, y.next), cmp.Compare(x.r.id, y.r.id))
	})
	out := make([]owedReceipt, len(got))
	for i, c := range got {
		out[i] = c.r
	}
	return out, nil
}

// unclaimReceipts gives back the claimed receipts ids that were not sent, so that any
// node with a session of the account sends them without waiting out the lease. Only
// rows still under this claim move.
func (g *Gateway) unclaimReceipts(ctx context.Context, ids []string, now, lease time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	return g.db.Write(ctx, func(tx store.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE smpp_server_receipts SET next_at = ?
			WHERE message_id = ANY(?) AND next_at = ?`, now.UnixMicro(), ids, lease.UnixMicro())
		return err
	})
}
