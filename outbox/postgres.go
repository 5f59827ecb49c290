package outbox

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/payswitch/payswitch/store"
)

// On PostgreSQL several nodes share the queue, and each node runs several transactions
// at once (a store Write is a transaction of its own there), so what SQLite's one writer
// serialises is serialised by locks, each taken before what it guards is read:
//
//   - Claim locks the rows it takes FOR UPDATE SKIP LOCKED: a claim skips the messages
//     another claim is taking instead of waiting for it, and a message whose claim
//     committed meanwhile no longer matches (its next_attempt_at is now a lease deadline
//     in the future), so two claims never take one message while its lease holds.
//   - A lease is the only hold a claim has: a node that dies mid-send loses its claims
//     when their leases run out, and any node's Claim takes them again then (Attempts
//     counts it). Lease deadlines are written by the claiming node's clock and compared
//     with the claiming one's, so the nodes' clocks must agree to well within a lease.
//   - ReleaseClaims at start gives back only the claims whose lease has run out: on
//     SQLite one process delivers from a file and every claim it finds at start is a
//     dead process's; here the others are live nodes' claims, being sent.
//   - Retry and Fail lock the message (FOR UPDATE) before reading its state, so that a
//     Retry cannot put back in the queue a message that a MarkSent on another node has
//     just recorded as sent.
//   - MarkSent and a receipt lock the part they record or look for (an advisory lock on
//     its link and SMSC ID) before touching it, so that a receipt either finds the part
//     or leaves an early receipt that the MarkSent then finds: never both missing each
//     other, never both applying it. A receipt then locks its message before it reads
//     the verdict of the message's parts, so that receipts for two parts of one message
//     at once do not each miss the other's. Locks are taken parts first, then the
//     message, by both.
//
// The reads of a claim find its rows by their IDs here (not by the lease deadline as on
// SQLite), because the deadline is made unique per Outbox only.

// pgClaimSQL is claimSQL for PostgreSQL: the same update, with the subquery's rows locked
// and those another claim is locking skipped.
func pgClaimSQL(limit int) string {
	return `UPDATE messages
		SET state = 'sending', attempts = attempts + 1, next_attempt_at = ?1, updated_at = ?2, claimed_by = ?6
		WHERE id IN (SELECT id FROM messages
			WHERE ` + due + ` AND next_attempt_at <= ?3 AND (?4 = '' OR kind = ?5)
			ORDER BY next_attempt_at, id LIMIT ` + strconv.Itoa(limit) + `
			FOR UPDATE SKIP LOCKED)
		RETURNING id`
}

const (
	// pgReleaseSQL gives back the claims whose lease has run out, and those of this
	// node's previous run (SetNode): args now, now, now, node.
	pgReleaseSQL = `UPDATE messages SET state = 'queued', next_attempt_at = ?1, updated_at = ?2
		WHERE state = 'sending' AND (next_attempt_at <= ?3 OR (?4 <> '' AND claimed_by = ?4))`
	// pgReadClaimSQL reads a claim's messages by their IDs, still leased until its
	// deadline: args ids, deadline.
	pgReadClaimSQL = `SELECT ` + messageCols + ` FROM messages
		WHERE id = ANY(?) AND state = 'sending' AND next_attempt_at = ? ORDER BY id`
	// pgLockMessageSQL locks a message for the rest of the transaction: arg id.
	pgLockMessageSQL = `SELECT id FROM messages WHERE id = ? FOR UPDATE`
)

// lockParts takes, for the rest of tx, the lock of each part (link, an SMSC message
// ID), in the order of their IDs, so that two transactions locking parts never wait
// for each other in a circle. On SQLite it does nothing: the one writer serialises
// every write.
func lockParts(ctx context.Context, tx store.Tx, pg bool, link string, mids []string) error {
	if !pg || len(mids) == 0 {
		return nil
	}
	keys := make([]string, len(mids))
	for i, mid := range mids {
		keys[i] = partLock(link, mid)
	}
	return lockPartKeys(ctx, tx, keys)
}

// partLock is the name of part (link, mid)'s advisory lock.
func partLock(link, mid string) string {
	return "outbox part " + strconv.Quote(link) + " " + strconv.Quote(mid)
}

// lockPartKeys takes the part locks named keys (partLock), in their order.
func lockPartKeys(ctx context.Context, tx store.Tx, keys []string) error {
	slices.Sort(keys)
	// Sent with the next statement, in one round trip (store.Later).
	if err := store.Later(ctx, tx, `SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0)))
		FROM unnest(?::text[]) WITH ORDINALITY AS u (k, n)`, keys); err != nil {
		return fmt.Errorf("lock parts: %w", err)
	}
	return nil
}
