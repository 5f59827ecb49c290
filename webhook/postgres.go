package webhook

import (
	"strconv"

	"github.com/payswitch/payswitch/store"
)

// The PostgreSQL forms of the statements whose SQLite form the dialects do not share.
// Lists go as arrays (= ANY, <> ALL) instead of JSON for json_each; pgx encodes Go
// slices as arrays, and an empty list must be an empty slice, not nil (NULL).

// pgCandidatesSQL is candidatesSQL on PostgreSQL: args now, left out ([]string). It
// locks the events it reads and skips those another node's claim holds, so that no two
// claims take one event (without the lock both read it as due and both lease it), and
// it leaves out merchants any node paused (webhook_endpoints.paused_until).
var pgCandidatesSQL = `SELECT e.seq, e.merchant_id, ep.merchant_id IS NOT NULL
	FROM webhook_events AS e LEFT JOIN webhook_endpoints AS ep ON ep.merchant_id = e.merchant_id
	WHERE e.` + pending + ` AND e.next_at <= ?1 AND e.merchant_id <> ALL(?2)
		AND (ep.paused_until IS NULL OR ep.paused_until <= ?1)
	ORDER BY e.next_at, e.seq LIMIT ` + strconv.Itoa(claimScan) + `
	FOR UPDATE OF e SKIP LOCKED`

// pgLeaseSQL leases the chosen events (?3) until ?1 under one new claim number, which
// it returns with each: args deadline, now, seqs ([]int64), the node (SetNode).
const pgLeaseSQL = `WITH l AS (SELECT nextval('webhook_leases') AS v)
	UPDATE webhook_events SET lease = l.v, next_at = ?1, updated_at = ?2, claimed_by = ?4 FROM l
	WHERE seq = ANY(?3) AND ` + pending + `
	RETURNING seq, id, merchant_id, type, body, attempts, created_at, l.v`

// pgInsertFreshSQL writes a fresh event leased under a new claim number, which it
// returns with the row's seq: args id, merchant, type, subject, body, created_at, the
// lease's deadline (next_at), now, the node (SetNode).
const pgInsertFreshSQL = `INSERT INTO webhook_events (id, merchant_id, type, subject, body, created_at, state,
	next_at, lease, updated_at, claimed_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, nextval('webhook_leases'), ?8, ?9)
	ON CONFLICT DO NOTHING RETURNING seq, lease`

// pgReleaseSQL makes due the claims whose lease has run out, and those of the node
// starting (?2, its name; SetNode), which its previous run left when it died: a starting
// node must leave the live claims of other nodes alone (the claim takes run-out ones
// anyway; this only clears their marks), but its own are no one's now, and without this
// the events it had written leased to itself would wait out their lease.
const pgReleaseSQL = `UPDATE webhook_events SET lease = 0, next_at = 0, updated_at = ?1
	WHERE ` + pending + ` AND lease <> 0 AND (next_at <= ?1 OR (?2 <> '' AND claimed_by = ?2))`

// pgPauseSQL records merchant ?2's pause until ?1 for every node's claims.
const pgPauseSQL = `UPDATE webhook_endpoints SET paused_until = GREATEST(paused_until, ?1) WHERE merchant_id = ?2`

// pgNextDueSQL is when the next event of a merchant not left out (?1, []string) is due,
// its merchant's pause included.
const pgNextDueSQL = `SELECT min(GREATEST(e.next_at, COALESCE(ep.paused_until, 0)))
	FROM webhook_events AS e LEFT JOIN webhook_endpoints AS ep ON ep.merchant_id = e.merchant_id
	WHERE e.` + pending + ` AND e.merchant_id <> ALL(?1)`

// pgDeliveredSQL marks a batch delivered: args now, seqs, statuses, the attempts' times
// and durations (each []int64). (A VALUES list of parameters would leave PostgreSQL
// guessing their types.)
const pgDeliveredSQL = `UPDATE webhook_events SET state = 'delivered', attempts = attempts + 1,
	lease = 0, next_at = 0, last_status = v.status, last_error = '', last_at = v.at, last_duration = v.duration,
	updated_at = ?1
	FROM unnest(?2::bigint[], ?3::bigint[], ?4::bigint[], ?5::bigint[]) AS v(seq, status, at, duration)
	WHERE webhook_events.seq = v.seq`

// pgSetEndpointSQL is SetEndpoint's upsert, which also ends a pause.
const pgSetEndpointSQL = `INSERT INTO webhook_endpoints (merchant_id, url, secret, updated_at)
	VALUES (?, ?, ?, ?) ON CONFLICT (merchant_id) DO UPDATE
	SET url = excluded.url, secret = excluded.secret, updated_at = excluded.updated_at, paused_until = 0`

// onPostgres reports whether h's database is PostgreSQL.
func (h *Hooks) onPostgres() bool { return h.db.Dialect() == store.Postgres }

// inSeqs is the condition "seq is one of the list" and the list as its argument.
func (h *Hooks) inSeqs(seqs []int64) (cond string, arg any) {
	if h.onPostgres() {
		return `seq = ANY(?)`, seqs
	}
	return `seq IN (SELECT value FROM json_each(?))`, seqsJSON(seqs)
}

// merchantList is a list of merchants as pgCandidatesSQL and pgNextDueSQL take it.
func merchantList(ids []string) []string {
	if ids == nil {
		return []string{}
	}
	return ids
}

// forUpdate is " FOR UPDATE" on PostgreSQL, where a row read to be updated must be
// locked as read; SQLite's one writer needs nothing.
func (h *Hooks) forUpdate() string {
	if h.onPostgres() {
		return " FOR UPDATE"
	}
	return ""
}
