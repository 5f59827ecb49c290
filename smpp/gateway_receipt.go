package smpp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
	"github.com/payswitch/payswitch/smpp/server"
	"github.com/payswitch/payswitch/store"
	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/internal/mask"
)

// Delivery receipts owed to the Gateway's ESMEs (SMPP 3.4 section 4.4.2 and appendix B).
//
// An ESME that sets registered_delivery on a submit_sm waits for a receipt carrying the
// message id of the submit_sm_resp; Kannel keeps the message "queued" until it comes.
// The switch is the end of the line for an MO, so the receipt is owed once the MO is
// durably processed (DELIVRD), or once a part of a concatenated MO that was acknowledged
// is dropped because its message never completed (UNDELIV). A submit_sm refused with an
// error status has no message id, so SMPP owes no receipt for it, and none is sent.
//
// Receipts are rows of smpp_server_receipts, written before the submit_sm_resp that
// gives the id goes out: an acknowledged MO always has its receipt on disk, whatever
// happens to the process or the bind afterwards. They are sent by one goroutine per
// account, over any of its sessions that can receive, whenever one binds, a receipt
// becomes owed, or receiptRetry has passed, never before the submit_sm_resp giving its
// id is written (Replied). A row goes only once the ESME answered its deliver_sm with
// ESME_ROK, in batches (so a receipt may come twice after a crash, never not at all).
// A receipt the ESME answers with an error waits receiptRetry before it is tried again,
// behind the others, so that one it keeps refusing does not hold up the rest. A receipt
// not delivered within receiptMaxAge is dropped: an ESME forgets a message long before
// that, and the table must not grow while an account never binds. On PostgreSQL, where
// several nodes share the table, the hold lives in the row and sending is claimed row by
// row (gateway_postgres.go).
const (
	receiptRetry  = 30 * time.Second
	receiptMaxAge = 72 * time.Hour
	receiptBatch  = 64 // rows read per round; an account owes them in next_at order
	// receiptForgetDelay is how long the rows of delivered receipts wait to be deleted
	// together: a delete per receipt would be one more durable write per MO, and would
	// hold up the writes of the MO behind it.
	receiptForgetDelay = time.Second
	// receiptPartHold is how long a part's receipt waits for the rest of its message
	// before it is owed as UNDELIV: beyond the Reassembler's hold, so that the set is
	// surely gone (from memory, or with the process).
	receiptPartHold = 2 * reassemblyTimeout
)

// Receipt states as the receipt text spells them, and their message_state values.
const (
	statDelivered   = "DELIVRD"
	statUndelivered = "UNDELIV"
)

var receiptMessageState = map[string]byte{statDelivered: 2, statUndelivered: 5}

// registered_delivery values (SMPP 3.4 section 5.2.17, bits 1-0): a receipt for every
// final outcome, or for failures only.
const (
	receiptAlways      = 1
	receiptFailureOnly = 2
)

// receiptMigration is GatewaySchema's second migration. stat is "" while a part of a
// concatenated MO awaits the rest of its message (part_set names that message within
// the account); want is the registered_delivery asked for. msisdn is the MO's source
// (the receipt's destination), dest its destination (the receipt's source). next_at is
// when it may be sent (again). Times are Unix microseconds.
const receiptMigration = `
CREATE TABLE smpp_server_receipts (
	message_id   TEXT PRIMARY KEY,
	system_id    TEXT NOT NULL,
	msisdn       TEXT NOT NULL,
	dest         TEXT NOT NULL,
	part_set     TEXT NOT NULL,
	want         INTEGER NOT NULL,
	stat         TEXT NOT NULL,
	submitted_at INTEGER NOT NULL,
	done_at      INTEGER NOT NULL,
	next_at      INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX smpp_server_receipts_owed ON smpp_server_receipts (system_id, next_at) WHERE stat <> '';
CREATE INDEX smpp_server_receipts_parts ON smpp_server_receipts (system_id, part_set) WHERE stat = '';
CREATE INDEX smpp_server_receipts_age ON smpp_server_receipts (submitted_at);
`

// handleMO passes m to the handler and records the receipts it is owed before the
// submit_sm with message id id is answered; it returns the status of the answer.
//
// A receipt row written after the handler's commit would add a commit to every MO's
// answer. So the common case, a whole MO asking for a receipt, writes its row while the
// handler works: the two writes share the store's group commit or overlap. Should the
// handler fail, the row is deleted again; should the process die first, the receipt
// goes out for an id the ESME never got, which it ignores. Either way the row waits,
// held in memory, until Replied says the answer giving its id was written: a receipt
// ahead of its submit_sm_resp cannot be matched by the ESME (Kannel drops it).
//
// A failure to record a receipt is answered ESME_RX_T_APPN, as when the handler
// fails: the ESME sends the MO again and it is processed twice, as after a crash
// between the handler's commit and the answer.
func (g *Gateway) handleMO(ctx context.Context, a *account, m MO, id string, part Part, want int, log zerolog.Logger) uint32 {
	if want != receiptAlways || part.Total > 1 {
		if err := g.h.HandleMO(ctx, m); err != nil {
			log.Error().Err(err).Msg("smpp server MO handler failed; the ESME will send it again")
			return server.StatusXTAppn
		}
		return g.oweReceipts(ctx, a, id, m.From, m.To, part, want, m.Received)
	}
	a.holdReceipt(id, g.ownNextAt(m.Received))
	var recErr error
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		_, recErr = g.oweDelivered(ctx, a, id, m.From, m.To, part, want, m.Received)
	}()
	err := g.h.HandleMO(ctx, m)
	<-recorded
	switch {
	case err != nil:
		log.Error().Err(err).Msg("smpp server MO handler failed; the ESME will send it again")
		if recErr == nil {
			if err := g.receiptsSent(ctx, []string{id}, nil, time.Time{}); err != nil {
				log.Warn().Err(err).Msg("smpp server receipt of a refused MO not deleted; the ESME will get it for an id it never had")
			}
		}
		a.forgetHold(id)
		return server.StatusXTAppn
	case recErr != nil:
		log.Error().Err(recErr).Msg("smpp server MO processed but its receipt not recorded; the ESME will send it again")
		a.forgetHold(id)
		return server.StatusXTAppn
	}
	return StatusOK
}

// oweReceipts records, after the handler, the receipts of the last part of a
// concatenated MO (its own, held as in handleMO, and those of the earlier parts).
func (g *Gateway) oweReceipts(ctx context.Context, a *account, id, from, to string, part Part, want int, now time.Time) uint32 {
	if part.Total <= 1 {
		return StatusOK
	}
	if want == 0 {
		if waiting, err := g.partsAwaitReceipts(ctx, a, from, part); err != nil || !waiting {
			if err != nil {
				g.log.Error().Err(err).Str("system_id", a.systemID).Msg("smpp server receipts of parts not read")
				return server.StatusXTAppn
			}
			return StatusOK
		}
	}
	a.holdReceipt(id, g.ownNextAt(now))
	owed, err := g.oweDelivered(ctx, a, id, from, to, part, want, now)
	if err != nil {
		a.forgetHold(id)
		g.log.Error().Err(err).Str("system_id", a.systemID).Str("from", mask.MSISDN(from)).
			Msg("smpp server MO processed but its receipt not recorded; the ESME will send it again")
		return server.StatusXTAppn
	}
	if owed {
		a.wakeReceipts() // the earlier parts' receipts: their answers went out long ago
	}
	return StatusOK
}

// Replied lets the receipt of the submit_sm just answered go: the answer that gives the
// ESME its message id is written.
func (h *gatewayHandler) Replied(s *server.Session, resp pdu.Body) {
	if resp.Header().ID != pdu.SubmitSMRespID {
		return
	}
	a := (*Gateway)(h).accounts[s.SystemID()]
	f := resp.Fields()[pdufield.MessageID]
	if a == nil || f == nil {
		return
	}
	a.releaseReceipt(f.String())
}

var _ server.Replier = (*gatewayHandler)(nil)

// holdReceipt keeps the receipt of id from being sent until releaseReceipt; until is
// the next_at its row is written with (Gateway.ownNextAt).
func (a *account) holdReceipt(id string, until int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.held == nil {
		a.held = make(map[string]int64)
	}
	a.held[id] = until
}

// releaseReceipt lets the receipt of id go, and wakes the sender when it was held. On
// PostgreSQL the sender then makes its row due (publishReleased), for whichever node
// sends it.
func (a *account) releaseReceipt(id string) {
	a.mu.Lock()
	until, ok := a.held[id]
	delete(a.held, id)
	if ok && a.g.pg {
		a.released = append(a.released, heldReceipt{id: id, until: until})
	}
	a.mu.Unlock()
	if ok {
		a.wakeReceipts()
	}
}

// forgetHold drops the hold of id, whose MO was refused: its row is gone or was never
// written, so there is nothing to release.
func (a *account) forgetHold(id string) {
	a.mu.Lock()
	delete(a.held, id)
	a.mu.Unlock()
}

func (a *account) receiptHeld(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.held[id]
	return ok
}

// receiptWanted reads registered_delivery: 0 when no receipt was asked for.
func receiptWanted(f pdufield.Map) int {
	switch fieldByte(f, pdufield.RegisteredDelivery) & 0x03 {
	case receiptAlways:
		return receiptAlways
	case receiptFailureOnly:
		return receiptFailureOnly
	}
	return 0
}

// owedReceipt is what a receipt needs to be sent.
type owedReceipt struct {
	id, msisdn, dest, stat string
	submitted, done        time.Time
}

// partSet names a concatenated MO within an account, as the Reassembler keys it.
func partSet(from string, p Part) string {
	return fmt.Sprintf("%s/%d/%d", from, p.Ref, p.Total)
}

// owePart records, before the part is acknowledged, that the part with message id id
// will be owed a receipt when its message completes or is dropped.
func (g *Gateway) owePart(ctx context.Context, a *account, id, from, to string, p Part, want int, now time.Time) error {
	return g.db.Write(ctx, func(tx store.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO smpp_server_receipts
			(message_id, system_id, msisdn, dest, part_set, want, stat, submitted_at, done_at, next_at)
			VALUES (?, ?, ?, ?, ?, ?, '', ?, ?, ?)`,
			id, a.systemID, from, to, partSet(from, p), want, now.UnixMicro(), now.UnixMicro(), now.UnixMicro())
		return err
	})
}

// oweDelivered records, before the MO is acknowledged, the DELIVRD receipts it is owed
// (handleMO says when): its own when a receipt for success was asked, and those of the
// earlier parts of its message when p is the part that completed one. It reports
// whether any receipt became owed.
func (g *Gateway) oweDelivered(ctx context.Context, a *account, id, from, to string, p Part, want int, now time.Time) (bool, error) {
	var owed bool
	err := g.db.Write(ctx, func(tx store.Tx) error {
		owed = false
		if id != "" && want == receiptAlways {
			if _, err := tx.ExecContext(ctx, `INSERT INTO smpp_server_receipts
				(message_id, system_id, msisdn, dest, part_set, want, stat, submitted_at, done_at, next_at)
				VALUES (?, ?, ?, ?, '', ?, ?, ?, ?, ?)`,
				id, a.systemID, from, to, want, statDelivered, now.UnixMicro(), now.UnixMicro(), g.ownNextAt(now)); err != nil {
				return err
			}
			owed = true
		}
		if p.Total <= 1 {
			return nil
		}
		set := partSet(from, p)
		res, err := tx.ExecContext(ctx, `UPDATE smpp_server_receipts SET stat = ?, done_at = ?, next_at = ?
			WHERE system_id = ? AND part_set = ? AND stat = '' AND want = ?`,
			statDelivered, now.UnixMicro(), now.UnixMicro(), a.systemID, set, receiptAlways)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			owed = true
		}
		// Asked for failures only: a delivered part owes nothing.
		_, err = tx.ExecContext(ctx, `DELETE FROM smpp_server_receipts
			WHERE system_id = ? AND part_set = ? AND stat = ''`, a.systemID, set)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("smpp: gateway: record receipt: %w", err)
	}
	return owed, nil
}

// partsAwaitReceipts reports whether earlier parts of p's message wait for a receipt,
// so that a last part sent without registered_delivery still settles them.
func (g *Gateway) partsAwaitReceipts(ctx context.Context, a *account, from string, p Part) (bool, error) {
	var one int
	err := g.db.Reader().QueryRowContext(ctx, `SELECT 1 FROM smpp_server_receipts
		WHERE system_id = ? AND part_set = ? AND stat = '' LIMIT 1`, a.systemID, partSet(from, p)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// sweepReceipts makes the parts whose message never completed owed as UNDELIV, and
// drops receipts older than receiptMaxAge. It wakes the accounts that now owe one.
func (g *Gateway) sweepReceipts(ctx context.Context, now time.Time) {
	var undeliv, expired int64
	touched := map[string]bool{}
	err := g.db.Write(ctx, func(tx store.Tx) error {
		clear(touched)
		rows, err := tx.QueryContext(ctx, `UPDATE smpp_server_receipts SET stat = ?, done_at = ?, next_at = ?
			WHERE stat = '' AND submitted_at < ? RETURNING system_id`,
			statUndelivered, now.UnixMicro(), now.UnixMicro(), now.Add(-receiptPartHold).UnixMicro())
		if err != nil {
			return err
		}
		undeliv = 0
		for rows.Next() {
			var sid string
			if err := rows.Scan(&sid); err != nil {
				rows.Close()
				return err
			}
			touched[sid] = true
			undeliv++
		}
		if err := rows.Close(); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM smpp_server_receipts WHERE submitted_at < ?`,
			now.Add(-receiptMaxAge).UnixMicro())
		if err != nil {
			return err
		}
		expired, _ = res.RowsAffected()
		return nil
	})
	if err != nil {
		g.quiet.Event("receipt-sweep", g.log.Error()).Err(err).Msg("smpp server receipts not swept")
		return
	}
	if undeliv > 0 {
		g.log.Info().Int64("receipts", undeliv).Msg("smpp server: parts of concatenated MO never completed; UNDELIV receipts owed")
	}
	if expired > 0 {
		g.log.Warn().Int64("receipts", expired).Dur("max_age", receiptMaxAge).Msg("smpp server dropped delivery receipts never delivered")
	}
	for sid := range touched {
		if a := g.accounts[sid]; a != nil {
			a.wakeReceipts()
		}
	}
}

// wakeReceipts asks the account's receipt sender to look for receipts to send.
func (a *account) wakeReceipts() {
	select {
	case a.receiptsDue <- struct{}{}:
	default: // already asked
	}
}

// sendReceipts runs until ctx ends, sending the account's owed receipts when woken or
// every receiptRetry.
func (a *account) sendReceipts(ctx context.Context) {
	t := time.NewTicker(a.g.receiptPoll)
	defer t.Stop()
	var forget <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			// What is not forgotten now is sent again after the restart.
			fctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
			a.publishReleased(fctx)
			a.forgetDelivered(fctx)
			cancel()
			return
		case <-a.receiptsDue:
		case <-t.C:
		case <-forget:
			forget = nil
			a.forgetDelivered(ctx)
		}
		a.publishReleased(ctx)
		a.flushReceipts(ctx)
		if len(a.delivered) >= receiptBatch {
			a.forgetDelivered(ctx)
		}
		if len(a.delivered) > 0 && forget == nil {
			forget = time.After(receiptForgetDelay)
		}
	}
}

// forgetDelivered deletes the rows of the receipts the ESME acknowledged. It runs on
// the account's receipt sender only.
func (a *account) forgetDelivered(ctx context.Context) {
	if len(a.delivered) == 0 {
		return
	}
	ids := make([]string, 0, len(a.delivered))
	for id := range a.delivered {
		ids = append(ids, id)
	}
	if err := a.g.receiptsSent(ctx, ids, nil, time.Time{}); err != nil {
		a.g.quiet.Event("receipt-done:"+a.systemID, a.g.log.Error()).Err(err).Str("system_id", a.systemID).
			Msg("smpp server receipts delivered but not forgotten; tried again")
		return
	}
	clear(a.delivered)
}

// flushReceipts sends the receipts due, oldest first, until none is left, no session
// can take them or the session fails (they are tried again later). One the ESME
// answers with an error is postponed by receiptRetry and the others go on.
func (a *account) flushReceipts(ctx context.Context) {
	g := a.g
	log := g.log.With().Str("system_id", a.systemID).Logger()
	for ctx.Err() == nil {
		s := a.receiver()
		if s == nil {
			return
		}
		now := g.now()
		lease := now.Add(receiptRetry)
		owed, err := g.owedReceipts(ctx, a, now, lease)
		if err != nil {
			g.quiet.Event("receipt-read:"+a.systemID, log.Error()).Err(err).Msg("smpp server receipts not read")
			return
		}
		var sent, refused, unsent []string
		var failed error
		for _, r := range owed {
			if a.receiptHeld(r.id) {
				unsent = append(unsent, r.id)
				continue // its submit_sm_resp is not written yet; Replied wakes us
			}
			if _, done := a.delivered[r.id]; done {
				continue
			}
			if failed != nil { // the session failed: the rest wait for the next bind
				unsent = append(unsent, r.id)
				continue
			}
			err := a.send(ctx, s, r.deliverSM())
			var st *StatusError
			switch {
			case err == nil:
				sent = append(sent, r.id)
			case errors.As(err, &st):
				refused = append(refused, r.id)
				g.quiet.Event("receipt-refused:"+a.systemID, log.Info()).Err(err).
					Msg("smpp server receipt refused by the ESME; tried again later")
			default:
				failed = err
				unsent = append(unsent, r.id)
			}
		}
		for _, id := range sent {
			a.delivered[id] = struct{}{}
		}
		if err := g.receiptsSent(ctx, nil, refused, now.Add(receiptRetry)); err != nil {
			g.quiet.Event("receipt-refused:"+a.systemID, log.Error()).Err(err).Msg("smpp server refused receipts not postponed")
			return
		}
		if g.pg {
			if err := g.unclaimReceipts(ctx, unsent, now, lease); err != nil {
				g.quiet.Event("receipt-unclaim:"+a.systemID, log.Error()).Err(err).Dur("lease", receiptRetry).
					Msg("smpp server receipts not sent and not given back; they are sent once the claim runs out")
			}
		}
		if failed != nil {
			g.quiet.Event("receipt-send:"+a.systemID, log.Info()).Err(failed).Int("owed", len(owed)-len(sent)-len(refused)).
				Msg("smpp server receipts not delivered; retried when the ESME binds again")
			return
		}
		// Held receipts are read again each round: stop once a round sends none.
		if len(owed) < receiptBatch || len(sent)+len(refused) == 0 {
			return
		}
	}
}

// owedReceipts reads the account's next receipts due at now, oldest first. Receipts
// due at the same microsecond go in the order their messages were acknowledged: a run's
// message ids are of one width and count up (the index's trailing key, so the order
// costs no sort). On PostgreSQL it claims them for this node until lease
// (claimReceipts); on SQLite the one process's sender is the only reader.
func (g *Gateway) owedReceipts(ctx context.Context, a *account, now, lease time.Time) ([]owedReceipt, error) {
	if g.pg {
		return g.claimReceipts(ctx, a, now, lease)
	}
	rows, err := g.db.Reader().QueryContext(ctx, `SELECT message_id, msisdn, dest, stat, submitted_at, done_at
		FROM smpp_server_receipts WHERE system_id = ? AND stat <> '' AND next_at <= ? ORDER BY next_at, message_id LIMIT ?`,
		a.systemID, now.UnixMicro(), receiptBatch)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []owedReceipt
	for rows.Next() {
		var r owedReceipt
		var sub, done int64
		if err := rows.Scan(&r.id, &r.msisdn, &r.dest, &r.stat, &sub, &done); err != nil {
			return nil, err
		}
		r.submitted, r.done = time.UnixMicro(sub), time.UnixMicro(done)
		out = append(out, r)
	}
	return out, rows.Err()
}

// receiptsSent forgets the receipts the ESME acknowledged and postpones those it
// refused until next.
func (g *Gateway) receiptsSent(ctx context.Context, sent, refused []string, next time.Time) error {
	if len(sent) == 0 && len(refused) == 0 {
		return nil
	}
	return g.db.Write(ctx, func(tx store.Tx) error {
		for _, id := range sent {
			if _, err := tx.ExecContext(ctx, `DELETE FROM smpp_server_receipts WHERE message_id = ?`, id); err != nil {
				return err
			}
		}
		for _, id := range refused {
			if _, err := tx.ExecContext(ctx, `UPDATE smpp_server_receipts SET next_at = ?
				WHERE message_id = ?`, next.UnixMicro(), id); err != nil {
				return err
			}
		}
		return nil
	})
}

// receiptTimeLayout is appendix B's YYMMDDhhmm, in UTC: the switch has no local time of
// its own to offer, and Kannel reads the dates only for display.
const receiptTimeLayout = "0601021504"

// receiptText is the appendix B text of r. text: stays empty: the MO's text may hold a
// code, and a receipt travels and is logged where codes must not be. err: is 000; stat
// says what happened.
func (r owedReceipt) receiptText() string {
	dlvrd := "000"
	if r.stat == statDelivered {
		dlvrd = "001"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "id:%s sub:001 dlvrd:%s submit date:%s done date:%s stat:%s err:000 text:",
		r.id, dlvrd, r.submitted.UTC().Format(receiptTimeLayout), r.done.UTC().Format(receiptTimeLayout), r.stat)
	return b.String()
}

// deliverSM builds the receipt as an SMSC sends it: a deliver_sm from the MO's
// destination to its source, esm_class "SMSC delivery receipt", the text in IA5-safe
// characters as data_coding 0, and the receipted_message_id and message_state TLVs.
func (r owedReceipt) deliverSM() pdu.Body {
	p := pdu.NewDeliverSM()
	f := p.Fields()
	setAddressing(f, r.dest, r.msisdn, Segment{DataCoding: CodingGSM7, ESMClass: esmDeliveryReceipt})
	f.Set(pdufield.ShortMessage, []byte(r.receiptText()))
	tlv := p.TLVFields()
	tlv.Set(pdutlv.TagReceiptedMessageID, pdutlv.CString(r.id))
	tlv.Set(pdutlv.TagMessageStateOption, receiptMessageState[r.stat])
	return p
}

// esmDeliveryReceipt is esm_class "SMSC delivery receipt" (SMPP 3.4 section 5.2.12).
const esmDeliveryReceipt uint8 = 0x04
