package webhook

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/payswitch/payswitch/store"
)

// claimed is an event a worker holds under a lease, with what it takes to deliver it.
type claimed struct {
	seq       int64
	id        string
	merchant  string
	eventType string
	body      []byte
	url       string
	sealed    string // the merchant's secret, sealed
	attempts  int    // before this one
	created   time.Time
	lease     int64 // this claim's mark on the row: its deadline (micros) on SQLite, its number on PostgreSQL
	deadline  int64 // when the lease runs out (micros); set on fresh events (fresh.go)
}

// claimScan bounds the due events one claim reads: a merchant with a long backlog that
// has just reached its limit must not make the claim read its whole backlog to find the
// next merchant's event; the next claim leaves that merchant out.
const claimScan = 256

// candidatesSQL lists due events, oldest first, of merchants not left out (a JSON array
// of IDs), and whether their merchant still has an endpoint: args now, left out.
var candidatesSQL = `SELECT e.seq, e.merchant_id, ep.merchant_id IS NOT NULL
	FROM webhook_events AS e LEFT JOIN webhook_endpoints AS ep ON ep.merchant_id = e.merchant_id
	WHERE e.` + pending + ` AND e.next_at <= ? AND e.merchant_id NOT IN (SELECT value FROM json_each(?))
	ORDER BY e.next_at, e.seq LIMIT ` + strconv.Itoa(claimScan)

// claim leases up to limit due events, at most room[m] of each merchant m in room and
// Config.PerMerchant of any other, and none of the merchants in skip (paused, or at
// their limit). Events whose merchant has no endpoint any more are given up on the way.
// more reports that due events of merchants not in skip were left: for want of room,
// beyond limit, or beyond the claim's scan.
func (h *Hooks) claim(ctx context.Context, limit int, skip []string, room map[string]int) (_ []claimed, more bool, err error) {
	now := h.cfg.Now()
	deadline := h.leaseDeadline(now)
	skipJSON, err := json.Marshal(skip)
	if err != nil {
		return nil, false, err
	}
	if skip == nil {
		skipJSON = []byte("[]")
	}
	candidates, skipArg := candidatesSQL, any(string(skipJSON))
	if h.onPostgres() {
		candidates, skipArg = pgCandidatesSQL, merchantList(skip)
	}
	var out []claimed
	err = h.db.Write(ctx, func(tx store.Tx) error {
		out, more = out[:0], false
		var chosen, orphans []int64
		taken := map[string]int{}
		rows, err := tx.QueryContext(ctx, candidates, micros(now), skipArg)
		if err != nil {
			return err
		}
		scanned := 0
		for rows.Next() {
			if scanned++; len(chosen) >= limit {
				more = true
				break
			}
			var seq int64
			var merchant string
			var hasEndpoint bool
			if err := rows.Scan(&seq, &merchant, &hasEndpoint); err != nil {
				rows.Close()
				return err
			}
			switch {
			case !hasEndpoint:
				orphans = append(orphans, seq)
			case taken[merchant] < roomOf(room, merchant, h.cfg.PerMerchant):
				taken[merchant]++
				chosen = append(chosen, seq)
			default:
				more = true
			}
		}
		if scanned >= claimScan {
			more = true
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(orphans) > 0 {
			in, arg := h.inSeqs(orphans)
			if _, err := tx.ExecContext(ctx, `UPDATE webhook_events SET state = 'failed', next_at = 0,
				last_error = 'the webhook endpoint was removed', updated_at = ?
				WHERE `+in, micros(now), arg); err != nil {
				return err
			}
		}
		if len(chosen) == 0 {
			return nil
		}
		// One lease for the whole claim, in one statement: an event is held by one claim
		// at a time, so a lease unlike every other claim's marks it as well as a lease of
		// its own would. A group run again takes a new lease: harmless, only its being
		// unique counts.
		// On PostgreSQL the lease is the claim's number instead (pgLeaseSQL), unique
		// across nodes.
		var lease int64
		pg := h.onPostgres()
		if pg {
			rows, err = tx.QueryContext(ctx, pgLeaseSQL, micros(deadline), micros(now), chosen, h.node)
		} else {
			lease = h.leaseUntil(deadline)
			rows, err = tx.QueryContext(ctx, `UPDATE webhook_events SET lease = ?1, next_at = ?1, updated_at = ?2
			WHERE seq IN (SELECT value FROM json_each(?3))
			RETURNING seq, id, merchant_id, type, body, attempts, created_at`, lease, micros(now), seqsJSON(chosen))
		}
		if err != nil {
			return err
		}
		for rows.Next() {
			c := claimed{lease: lease}
			var created int64
			var body string
			dest := []any{&c.seq, &c.id, &c.merchant, &c.eventType, &body, &c.attempts, &created}
			if pg {
				dest = append(dest, &c.lease)
			}
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return err
			}
			c.body, c.created = []byte(body), fromMicros(created)
			out = append(out, c)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		// RETURNING comes in no promised order: the claim hands events out oldest first.
		slices.SortFunc(out, func(a, b claimed) int { return cmp.Compare(a.seq, b.seq) })
		endpoints := map[string][2]string{}
		for i := range out {
			ep, ok := endpoints[out[i].merchant]
			if !ok {
				if err := tx.QueryRowContext(ctx, `SELECT url, secret FROM webhook_endpoints WHERE merchant_id = ?`,
					out[i].merchant).Scan(&ep[0], &ep[1]); err != nil {
					return err
				}
				endpoints[out[i].merchant] = ep
			}
			out[i].url, out[i].sealed = ep[0], ep[1]
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("webhook: claim: %w", err)
	}
	return out, more, nil
}

// leaseDeadline is when a lease taken at now runs out: it outlasts the longest
// delivery, so that only a worker that died loses one.
func (h *Hooks) leaseDeadline(now time.Time) time.Time { return now.Add(h.cfg.Timeout + time.Minute) }

func roomOf(room map[string]int, merchant string, otherwise int) int {
	if n, ok := room[merchant]; ok {
		return n
	}
	return otherwise
}

// leaseUntil returns the lease deadline t in micros, moved on as far as it takes to be
// unlike any other lease given: a result is recorded only by the claim that holds it.
func (h *Hooks) leaseUntil(t time.Time) int64 {
	d := micros(t)
	for {
		last := h.lastLease.Load()
		next := max(d, last+1)
		if h.lastLease.CompareAndSwap(last, next) {
			return next
		}
	}
}

// releaseClaims makes every claimed event due now: Run calls it as it starts, when the
// claims it finds were made by a process that died mid-delivery. On SQLite only one
// process may deliver from a database at a time (serve holds a lock). On PostgreSQL
// other nodes may be delivering: only claims whose lease ran out are released, and this
// node's own (SetNode).
func (h *Hooks) releaseClaims(ctx context.Context) (int64, error) {
	var n int64
	now := micros(h.cfg.Now())
	release, args := `UPDATE webhook_events SET lease = 0, next_at = 0, updated_at = ?
			WHERE `+pending+` AND lease <> 0`, []any{now}
	if h.onPostgres() {
		release, args = pgReleaseSQL, append(args, h.node)
	}
	err := h.db.Write(ctx, func(tx store.Tx) error {
		res, err := tx.ExecContext(ctx, release, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("webhook: release claims: %w", err)
	}
	return n, nil
}

// release hands back c's claim, due now, without counting an attempt: the worker is
// stopping and cut the delivery short.
func (h *Hooks) release(ctx context.Context, c claimed) error {
	now := micros(h.cfg.Now())
	return h.db.Write(ctx, func(tx store.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE webhook_events SET lease = 0, next_at = 0, updated_at = ?
			WHERE seq = ? AND lease = ? AND `+pending, now, c.seq, c.lease)
		return err
	})
}

// attempt is how one delivery went.
type attempt struct {
	at       time.Time // when it started
	status   int       // the HTTP status; 0 when none came
	errText  string    // why it failed; "" for a 2xx
	duration time.Duration
}

func (a attempt) ok() bool { return a.errText == "" }

// Outcomes of recording an attempt.
const (
	outcomeDelivered = "delivered"
	outcomeRetry     = "retry"
	outcomeGaveUp    = "gave_up"
	outcomeStale     = "stale" // the claim had been released meanwhile: the attempt is only logged
)

// record writes how a failed attempt at c went: the event's state and last attempt, and
// an entry in the deliveries' log (a delivered attempt goes to the recorder). The event
// is due again after the backoff of its attempts, but not after the time RetryFor allows
// (the last attempt is at that point); once RetryFor has run out it is given up. It
// returns the outcome and, for a retry, when.
func (h *Hooks) record(ctx context.Context, c claimed, a attempt) (outcome string, next time.Time, err error) {
	now := h.cfg.Now()
	last := c.created.Add(h.cfg.RetryFor)
	next = now.Add(h.backoff(c.attempts + 1))
	if next.After(last) {
		next = last
	}
	err = h.db.Write(ctx, func(tx store.Tx) error {
		var attempts int
		var lease int64
		var state string
		// On PostgreSQL the row is locked as read, so that no other node's claim of it
		// (once this lease has run out) comes between the check and the update.
		if err := tx.QueryRowContext(ctx, `SELECT state, attempts, lease FROM webhook_events WHERE seq = ?`+
			h.forUpdate(), c.seq).Scan(&state, &attempts, &lease); err != nil {
			return err
		}
		attempts++
		var res string
		var err error
		switch {
		case state != statePending || lease != c.lease:
			res = outcomeStale
			attempts = c.attempts + 1
		case !now.Before(last):
			res = outcomeGaveUp
			_, err = tx.ExecContext(ctx, `UPDATE webhook_events SET state = 'failed', attempts = ?, lease = 0,
				next_at = 0, last_status = ?, last_error = ?, last_at = ?, last_duration = ?, updated_at = ? WHERE seq = ?`,
				attempts, a.status, a.errText, micros(a.at), a.duration.Microseconds(), micros(now), c.seq)
		default:
			res = outcomeRetry
			_, err = tx.ExecContext(ctx, `UPDATE webhook_events SET attempts = ?, lease = 0, next_at = ?,
				last_status = ?, last_error = ?, last_at = ?, last_duration = ?, updated_at = ? WHERE seq = ?`,
				attempts, micros(next), a.status, a.errText, micros(a.at), a.duration.Microseconds(), micros(now), c.seq)
		}
		if err != nil {
			return err
		}
		outcome = res
		return h.logDelivery(ctx, tx, c, attempts, a)
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("webhook: record delivery of %s: %w", c.id, err)
	}
	return outcome, next, nil
}

// pruneOneIn is how seldom logDelivery prunes: one attempt in this many at random, so
// that the delete (a seek past KeepDeliveries rows) is not paid on every delivery and a
// merchant's log holds Config.KeepDeliveries and about pruneOneIn more. At random, not
// every n-th attempt: merchants whose deliveries alternate would otherwise leave one of
// them never pruned.
const pruneOneIn = 64

// prune reports whether this attempt prunes its merchant's log.
func (h *Hooks) prune() bool { return h.pruneAlways || rand.N(pruneOneIn) == 0 }

// logDelivery adds a failed attempt to the deliveries' log and, now and then, prunes the
// merchant's oldest beyond Config.KeepDeliveries.
func (h *Hooks) logDelivery(ctx context.Context, tx store.Tx, c claimed, attempt int, a attempt) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (merchant_id, event_id, event_type, attempt, at,
		status, error, duration) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		c.merchant, c.id, c.eventType, attempt, micros(a.at), a.status, a.errText, a.duration.Microseconds()); err != nil {
		return err
	}
	if !h.prune() {
		return nil
	}
	return h.pruneLog(ctx, tx, c.merchant)
}

// pruneLog deletes merchant's logged attempts beyond Config.KeepDeliveries.
func (h *Hooks) pruneLog(ctx context.Context, tx store.Tx, merchant string) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE merchant_id = ?1 AND id <=
		(SELECT id FROM webhook_deliveries WHERE merchant_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)`,
		merchant, h.cfg.KeepDeliveries)
	return err
}

// pauseMerchant moves merchant's waiting events to until at the earliest, so that
// claims do not read past them while its deliveries are paused.
// On PostgreSQL the pause is also recorded with the endpoint, for every node's claims
// and for the events queued during it.
func (h *Hooks) pauseMerchant(ctx context.Context, merchant string, until time.Time) error {
	return h.db.Write(ctx, func(tx store.Tx) error {
		if h.onPostgres() {
			if _, err := tx.ExecContext(ctx, pgPauseSQL, micros(until), merchant); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE webhook_events SET next_at = ?1
			WHERE merchant_id = ?2 AND `+pending+` AND lease = 0 AND next_at < ?1`, micros(until), merchant)
		return err
	})
}

// backoff is the wait after failed attempt number n (1 for the first), lengthened by up
// to a tenth at random.
func (h *Hooks) backoff(n int) time.Duration {
	b := h.cfg.Backoff
	d := b[min(max(n, 1), len(b))-1]
	return d + rand.N(d/10+1)
}

// seqsJSON is seqs as a JSON array, for json_each.
func seqsJSON(seqs []int64) string {
	b := make([]byte, 0, 8*len(seqs)+2)
	b = append(b, '[')
	for i, s := range seqs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, s, 10)
	}
	return string(append(b, ']'))
}
