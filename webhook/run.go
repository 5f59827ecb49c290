package webhook

import (
	"context"
	"net/url"
	"time"
)

// Timing of the worker's loop.
const (
	// maxIdle is the longest the worker waits without looking at the queue: an event
	// queued by a writer that forgot to Kick still goes out.
	maxIdle = time.Minute
	// errorWait is how long the worker waits after the store refused a claim.
	errorWait = 5 * time.Second
	// sweepEvery is how often the worker gives up forgotten events and deletes old ones.
	sweepEvery = time.Hour
	// depthEvery is how often the worker counts the queue for the depth metric.
	depthEvery = 10 * time.Second
)

// merchantState is what the worker knows of one merchant's deliveries; it forgets a
// merchant with nothing in flight and no failure.
type merchantState struct {
	inflight    int
	failures    int       // failed attempts in a row
	pausedUntil time.Time // its events wait until then; zero: not paused
}

// done is a finished delivery, as the worker's goroutine reports it.
type done struct {
	merchant string
	outcome  string // outcomeDelivered, ...; "" when the attempt was cut short by Run's end
	// recording: a delivered attempt whose record is still being written; its
	// goroutine reports again on dispatcher.recorded once it is.
	recording bool
}

// dispatcher is Run's state; only Run's goroutine touches it.
type dispatcher struct {
	h         *Hooks
	merchants map[string]*merchantState
	inflight  int
	done      chan done
	rec       *recorder // records delivered attempts in batches
	// recorded gets the delivered attempts once recorded; recording counts those
	// whose slot is free (their done came) and whose record is not written yet.
	recorded  chan done
	recording int
	nextSweep time.Time
	nextDepth time.Time // when to count the queue for the metric next
	// dirty: the database may hold due events that no claim has looked for since. It is
	// set at the start, by Kick, by the timer, by a failed attempt and by a claim that
	// left due events behind; a round claims only then (or once dueAt is reached), so
	// that fresh events, delivered from memory, cost no claim.
	dirty bool
	// watched are the merchants the last claim left out (paused, or at their limit):
	// the end of a delivery of one of them makes the worker dirty.
	watched map[string]bool
	// dueAt is when the next event in the database of a merchant not left out is due
	// (or its lease runs out), as the last claim's round read it.
	dueAt time.Time
	// fresh are the fresh events taken from the hand-over, by merchant, waiting for
	// room; release those to give back to the database's queue for the claims.
	fresh   map[string][]claimed
	nfresh  int
	release []claimed
}

// Run delivers events until ctx ends: it claims due events, at most Config.Workers in
// flight and Config.PerMerchant per merchant, and leaves out merchants whose deliveries
// are paused. Fresh events (EnqueueThen) it delivers as they are handed over, under the
// same limits, without claiming them. It wakes when Kick is called, when a fresh event
// is handed over, when a delivery ends and when the next event or pause is due (by
// Config.After).
//
// It starts by releasing the claims it finds (a process that died left them; on SQLite
// only one process may deliver from a database at a time). On PostgreSQL several nodes
// deliver at once: it releases only claims whose lease ran out, each node keeps its own
// in-flight limits and failure counts, and a pause one node decides is kept in the
// database, where every node's claims honour it. When ctx ends, the deliveries in
// flight are cut short and their events made due again, attempts uncounted, as are the
// fresh events not yet started; Run returns once that is written. Close the store after
// Run returns.
func (h *Hooks) Run(ctx context.Context) error {
	if !h.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer h.running.Store(false)
	if n, err := h.releaseClaims(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started
		}
		return err
	} else if n > 0 {
		h.cfg.Log.Info().Int64("events", n).Msg("webhook: deliveries cut short by a stop are due again")
	}
	// Fresh events leased from now on are this run's: a lease written before was
	// released above, or (on PostgreSQL) runs out.
	h.fresh.Open()
	d := &dispatcher{h: h, merchants: map[string]*merchantState{}, done: make(chan done, h.cfg.Workers),
		rec: newRecorder(h), recorded: make(chan done, h.cfg.Workers), dirty: true, watched: map[string]bool{},
		fresh: map[string][]claimed{}}
	// The recorder outlives the loop below: Run returns only once no delivery is in
	// flight and every delivered attempt is recorded, so none waits for it when it stops.
	recCtx, stopRecorder := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRecorder()
	go d.rec.run(recCtx)
	for {
		wake := d.round(ctx)
		var timer <-chan time.Time
		if d.inflight < h.cfg.Workers {
			// From the clock now, not the round's start: a round can take a while.
			wait := wake.Sub(h.cfg.Now())
			if wait <= 0 {
				// Due yet not claimed: it came due during the round, or its merchant
				// reached its limit in the round's claim (then the end of a delivery
				// wakes the worker too). This only keeps the loop from spinning.
				wait = 100 * time.Millisecond
			}
			timer = h.cfg.After(wait)
			if h.idle != nil && d.inflight == 0 && d.nfresh == 0 && len(h.wake) == 0 && len(h.fresh.Ready()) == 0 {
				h.idle(wake)
			}
		}
		select {
		case <-ctx.Done():
			for d.inflight > 0 {
				d.finish(context.WithoutCancel(ctx), <-d.done)
			}
			for d.recording > 0 { // every delivered attempt's done came: their records are counted
				d.wasRecorded(<-d.recorded)
			}
			d.stop(context.WithoutCancel(ctx))
			return nil
		case r := <-d.done:
			d.finish(ctx, r)
			// Take in every other delivery that has ended too before the next round: a
			// claim is a write, and one claim for all the free workers costs what one
			// claim for a single worker does.
			for more := true; more; {
				select {
				case r := <-d.done:
					d.finish(ctx, r)
				default:
					more = false
				}
			}
		case r := <-d.recorded:
			d.wasRecorded(r)
		case <-h.wake:
			d.dirty = true
		case <-h.fresh.Ready():
		case <-timer:
			d.dirty = true
		}
	}
}

// round starts what deliveries it can and returns when the worker should look again,
// unless something wakes it before.
func (d *dispatcher) round(ctx context.Context) time.Time {
	h := d.h
	now := h.cfg.Now()
	d.takeFresh()
	d.applyResets()
	if !now.Before(d.nextSweep) {
		h.sweep(ctx, now)
		d.nextSweep = now.Add(sweepEvery)
	}
	d.startFresh(ctx, now)
	d.releaseFresh(ctx)
	if d.dirty || !now.Before(d.dueAt) {
		if !d.claimDue(ctx, now) {
			return now.Add(errorWait)
		}
	}
	if !now.Before(d.nextDepth) {
		h.countQueue(ctx)
		d.nextDepth = now.Add(depthEvery)
	}
	h.m.paused.Set(float64(d.pausedCount(now)))
	if d.inflight >= h.cfg.Workers {
		return time.Time{} // the worker waits for a delivery to end
	}
	return d.untilNext(now)
}

// claimDue claims and starts due events while workers are free, and notes what the
// claims left: whether due events remain, the merchants left out, and when the next
// one is due. False when the store refused a claim.
func (d *dispatcher) claimDue(ctx context.Context, now time.Time) bool {
	h := d.h
	var skip []string
	for d.inflight < h.cfg.Workers && ctx.Err() == nil {
		skip = d.skipped(now)
		cs, more, err := h.claim(ctx, h.cfg.Workers-d.inflight, skip, d.room())
		if err != nil {
			if ctx.Err() == nil {
				h.throttle.Event("claim", h.cfg.Log.Error()).Err(err).Msg("webhook: cannot claim events; trying again")
			}
			return false
		}
		for _, c := range cs {
			d.start(ctx, c)
		}
		d.dirty = more
		if len(cs) == 0 || !more {
			break
		}
	}
	clear(d.watched)
	for _, id := range skip {
		d.watched[id] = true
	}
	d.dueAt = now.Add(maxIdle)
	if next, ok, err := h.nextDue(ctx, d.skipped(now)); err == nil && ok && next.Before(d.dueAt) {
		d.dueAt = next
	}
	return true
}

// takeFresh takes the fresh events handed over since the last round.
func (d *dispatcher) takeFresh() {
	handed, spilled := d.h.fresh.Take(-1)
	for _, c := range handed {
		d.fresh[c.merchant] = append(d.fresh[c.merchant], c)
	}
	d.nfresh += len(handed)
	d.release = append(d.release, spilled...)
}

// startFresh starts the fresh events there is room for. Those of a paused merchant, and
// those held so long that their lease would not outlast a delivery, go back to the
// database's queue.
func (d *dispatcher) startFresh(ctx context.Context, now time.Time) {
	h := d.h
	gone := 0
	for merchant, q := range d.fresh {
		m := d.merchants[merchant]
		if m != nil && now.Before(m.pausedUntil) {
			d.release = append(d.release, q...)
			gone += len(q)
			delete(d.fresh, merchant)
			continue
		}
		for len(q) > 0 && d.inflight < h.cfg.Workers && (m == nil || m.inflight < d.limit(m)) {
			c := q[0]
			q[0] = claimed{}
			q = q[1:]
			gone++
			if !h.startable(c, now) {
				d.release = append(d.release, c)
				continue
			}
			d.start(ctx, c)
			m = d.merchants[merchant]
		}
		if len(q) == 0 {
			delete(d.fresh, merchant)
		} else {
			d.fresh[merchant] = q
		}
	}
	d.nfresh -= gone
	h.fresh.Done(gone)
}

// releaseFresh gives the fresh events set aside back to the database's queue, where
// claims find them.
func (d *dispatcher) releaseFresh(ctx context.Context) {
	if len(d.release) == 0 {
		return
	}
	if err := d.h.releaseFresh(ctx, d.release); err != nil && ctx.Err() == nil {
		d.h.cfg.Log.Warn().Err(err).Int("events", len(d.release)).
			Msg("webhook: cannot release events; they are due again when their lease runs out")
	}
	d.release, d.dirty = nil, true
}

// stop gives every fresh event not started back to the database's queue, as Run ends.
func (d *dispatcher) stop(ctx context.Context) {
	handed, spilled := d.h.fresh.Close()
	for _, q := range d.fresh {
		d.release = append(d.release, q...)
	}
	d.release = append(append(d.release, handed...), spilled...)
	d.h.fresh.Done(d.nfresh + len(handed))
	d.fresh, d.nfresh = nil, 0
	d.releaseFresh(ctx)
}

// skipped lists the merchants a claim must leave out: paused, or at their limit.
func (d *dispatcher) skipped(now time.Time) []string {
	var skip []string
	for id, m := range d.merchants {
		if now.Before(m.pausedUntil) || m.inflight >= d.limit(m) {
			skip = append(skip, id)
		}
	}
	return skip
}

// limit is how many deliveries m may have in flight: one while its deliveries are
// failing (the first after a pause tests the endpoint), else Config.PerMerchant.
func (d *dispatcher) limit(m *merchantState) int {
	if m.failures >= d.h.cfg.MaxFailures {
		return 1
	}
	return d.h.cfg.PerMerchant
}

// room is how many more deliveries each merchant the worker knows may start now.
func (d *dispatcher) room() map[string]int {
	room := make(map[string]int, len(d.merchants))
	for id, m := range d.merchants {
		room[id] = d.limit(m) - m.inflight
	}
	return room
}

func (d *dispatcher) state(merchant string) *merchantState {
	m, ok := d.merchants[merchant]
	if !ok {
		m = &merchantState{}
		d.merchants[merchant] = m
	}
	return m
}

// start delivers c on a goroutine of its own, which reports to d.done.
func (d *dispatcher) start(ctx context.Context, c claimed) {
	d.state(c.merchant).inflight++
	d.inflight++
	h := d.h
	go func() {
		a := h.deliver(ctx, c)
		if ctx.Err() != nil && !a.ok() {
			// Cut short by Run's end: the event is due again at the next start.
			if err := h.release(context.WithoutCancel(ctx), c); err != nil {
				h.cfg.Log.Warn().Err(err).Str("event", c.id).Msg("webhook: cannot release a claim; it is due again when its lease runs out")
			}
			d.done <- done{merchant: c.merchant}
			return
		}
		if a.ok() {
			// The merchant answered: its slot is free now, while the attempt is recorded
			// with others in one write. A busy merchant's deliveries would otherwise
			// wait for the store's writer as well as for its endpoint; at most
			// Config.PerMerchant at once, that capped its webhooks at a few hundred a
			// second. An attempt not recorded (a crash meanwhile) is delivered again.
			d.done <- done{merchant: c.merchant, outcome: outcomeDelivered, recording: true}
			if err := d.rec.record(c, a); err != nil {
				h.cfg.Log.Error().Err(err).Str("event", c.id).Str("merchant", c.merchant).
					Msg("webhook: cannot record a delivery; the event is claimed again when its lease runs out")
			} else {
				h.observe(c, a, outcomeDelivered, time.Time{})
			}
			d.recorded <- done{merchant: c.merchant, outcome: outcomeDelivered}
			return
		}
		outcome, next, err := h.record(context.WithoutCancel(ctx), c, a)
		if err != nil {
			h.cfg.Log.Error().Err(err).Str("event", c.id).Str("merchant", c.merchant).
				Msg("webhook: cannot record a delivery; the event is claimed again when its lease runs out")
			d.done <- done{merchant: c.merchant}
			return
		}
		h.observe(c, a, outcome, next)
		d.done <- done{merchant: c.merchant, outcome: outcome}
	}()
}

// finish takes a delivery's end into its merchant's state: a success closes the
// circuit, a failure counts, and Config.MaxFailures in a row pause the merchant.
func (d *dispatcher) finish(ctx context.Context, r done) {
	h := d.h
	d.inflight--
	m := d.state(r.merchant)
	m.inflight--
	if d.watched[r.merchant] {
		delete(d.watched, r.merchant)
		d.dirty = true
	}
	switch r.outcome {
	case outcomeDelivered:
		if !m.pausedUntil.IsZero() {
			m.pausedUntil = time.Time{}
			d.publishPauses()
		}
		m.failures = 0
	case outcomeRetry, outcomeGaveUp:
		// The event's next attempt is in the database, to be claimed when due.
		d.dirty = true
		m.failures++
		if m.failures >= h.cfg.MaxFailures {
			m.pausedUntil = h.cfg.Now().Add(h.cfg.Pause)
			d.publishPauses()
			h.cfg.Log.Warn().Str("merchant", r.merchant).Int("failures", m.failures).Time("until", m.pausedUntil).
				Msg("webhook: the merchant's endpoint keeps failing; its deliveries pause")
			if err := h.pauseMerchant(ctx, r.merchant, m.pausedUntil); err != nil && ctx.Err() == nil {
				h.cfg.Log.Warn().Err(err).Str("merchant", r.merchant).Msg("webhook: cannot move the paused merchant's events")
			}
		}
	}
	if m.inflight == 0 && m.failures == 0 {
		delete(d.merchants, r.merchant)
	}
	if r.recording {
		d.recording++
		return // finished once recorded (wasRecorded)
	}
	if h.finished != nil {
		h.finished(r)
	}
}

// wasRecorded takes in a delivered attempt whose record is written (or failed).
func (d *dispatcher) wasRecorded(r done) {
	d.recording--
	if d.h.finished != nil {
		d.h.finished(r)
	}
}

// applyResets forgets the failures of merchants whose endpoint changed.
func (d *dispatcher) applyResets() {
	h := d.h
	h.mu.Lock()
	resets := h.resets
	if len(resets) == 0 {
		h.mu.Unlock()
		return
	}
	h.resets = map[string]bool{}
	h.mu.Unlock()
	for id := range resets {
		if m, ok := d.merchants[id]; ok {
			m.failures, m.pausedUntil = 0, time.Time{}
			if m.inflight == 0 {
				delete(d.merchants, id)
			}
		}
		// Fresh events carry the endpoint as it was: the claim reads the new one.
		if q, ok := d.fresh[id]; ok {
			d.release = append(d.release, q...)
			d.nfresh -= len(q)
			h.fresh.Done(len(q))
			delete(d.fresh, id)
		}
	}
	d.publishPauses()
}

// publishPauses tells EnqueueThen which merchants are paused, until when.
func (d *dispatcher) publishPauses() {
	paused := map[string]time.Time{}
	for id, m := range d.merchants {
		if !m.pausedUntil.IsZero() {
			paused[id] = m.pausedUntil
		}
	}
	d.h.pauses.Store(&paused)
}

func (d *dispatcher) pausedCount(now time.Time) int {
	n := 0
	for _, m := range d.merchants {
		if now.Before(m.pausedUntil) {
			n++
		}
	}
	return n
}

// untilNext is when an event of a merchant not left out is due, as the last claim's
// round read it, or a pause ends, at the latest maxIdle from now.
func (d *dispatcher) untilNext(now time.Time) time.Time {
	wake := now.Add(maxIdle)
	if d.dueAt.Before(wake) {
		wake = d.dueAt
	}
	for _, m := range d.merchants {
		if now.Before(m.pausedUntil) && m.pausedUntil.Before(wake) {
			wake = m.pausedUntil
		}
	}
	return wake
}

// observe logs an attempt and counts it in the metrics.
func (h *Hooks) observe(c claimed, a attempt, outcome string, next time.Time) {
	h.m.deliveries.WithLabelValues(outcome).Inc()
	h.m.duration.Observe(a.duration.Seconds())
	host := ""
	if u, err := url.Parse(c.url); err == nil {
		host = u.Host
	}
	switch outcome {
	case outcomeDelivered:
		h.cfg.Log.Debug().Str("event", c.id).Str("merchant", c.merchant).Str("host", host).Int("status", a.status).
			Int("attempt", c.attempts+1).Msg("webhook: delivered")
	case outcomeRetry:
		h.cfg.Log.Info().Str("event", c.id).Str("merchant", c.merchant).Str("host", host).Int("status", a.status).
			Str("error", a.errText).Int("attempt", c.attempts+1).Time("next", next).Msg("webhook: delivery failed; will retry")
	case outcomeGaveUp:
		h.cfg.Log.Warn().Str("event", c.id).Str("merchant", c.merchant).Str("host", host).Int("status", a.status).
			Str("error", a.errText).Int("attempt", c.attempts+1).Msg("webhook: delivery failed for retry_for; gave up")
	}
}
