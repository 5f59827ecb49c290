package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/payswitch/payswitch/tools/smscsim"
)

// phoneInbox is how many MTs may wait for a phone before the dispatcher drops more.
const phoneInbox = 32

// merchant is a till the phones pay.
type merchant struct {
	code, msisdn, id string
}

// attempt is one payment as its phone knows it, from the code SMS on.
type attempt struct {
	amount int64 // minor units
	till   string
}

// phone is one simulated feature phone with its wallet. Only one goroutine uses a phone
// at a time: the worker that took it from the pool, or run once the workers are done.
type phone struct {
	msisdn   string
	sim      *smscsim.Sim // the SMSC of the switch node this phone writes to
	walletID string
	funded   int64
	inbox    chan smscsim.MT // filled by the dispatcher

	payments  int                // PAY messages sent
	requests  int                // requests to pay made to it (request phones)
	known     map[string]attempt // payment ID -> what it was, from its code SMS
	confirmed map[string]int     // payment ID -> receipts seen (more than one is a duplicate)
}

func newPhone(msisdn string) *phone {
	return &phone{msisdn: msisdn, inbox: make(chan smscsim.MT, phoneInbox),
		known: map[string]attempt{}, confirmed: map[string]int{}}
}

// note takes in an SMS that is not the one the phone waits for: a late receipt, or the
// late code SMS of a payment the phone gave up on (cancelled, but a receipt could still
// follow if the switch had taken the code).
func (p *phone) note(m sms) {
	switch m.kind {
	case kindReceipt:
		p.confirmed[m.id]++
	case kindCode:
		if _, ok := p.known[m.id]; !ok {
			p.known[m.id] = attempt{amount: m.amount, till: m.till}
		}
	}
}

// drain notes every MT already waiting.
func (p *phone) drain() {
	for {
		select {
		case mt := <-p.inbox:
			p.note(readSMS(mt.Text))
		default:
			return
		}
	}
}

// completed returns how many of the phone's payments were confirmed, and their total.
func (p *phone) completed() (n int, total int64) {
	for id := range p.confirmed {
		if a, ok := p.known[id]; ok {
			n++
			total += a.amount
		}
	}
	return n, total
}

// dispatcher hands the simulator's MTs to the phones by recipient. It never blocks: the
// simulator drops MTs for a subscriber that falls behind.
type dispatcher struct {
	phones    map[string]*phone // by MSISDN; read-only while run runs
	merchants map[string]bool   // MSISDNs of the tills

	last     atomic.Int64 // UnixNano of the last MT
	toPhones atomic.Int64
	notices  atomic.Int64 // MTs to tills (payee notices)
	dropped  atomic.Int64 // MTs for a phone whose inbox was full
	unknown  atomic.Int64 // MTs to anyone else
}

func (d *dispatcher) run(mts <-chan smscsim.MT) {
	for mt := range mts {
		d.last.Store(time.Now().UnixNano())
		if p := d.phones[mt.To]; p != nil {
			d.toPhones.Add(1)
			select {
			case p.inbox <- mt:
			default:
				d.dropped.Add(1)
			}
			continue
		}
		if d.merchants[mt.To] {
			d.notices.Add(1)
			continue
		}
		d.unknown.Add(1)
	}
}

// waitQuiet returns once no MT has arrived for quiet, or after limit.
func (d *dispatcher) waitQuiet(ctx context.Context, quiet, limit time.Duration) {
	end := time.Now().Add(limit)
	for time.Now().Before(end) && ctx.Err() == nil {
		if time.Since(time.Unix(0, d.last.Load())) >= quiet {
			return
		}
		time.Sleep(quiet / 10)
	}
}

// stats is what one worker measured.
type stats struct {
	payments  int
	latencies []time.Duration // of payments confirmed in time
	reasons   map[string]int  // why payments were not confirmed in time
}

func (s *stats) fail(reason string) {
	if s.reasons == nil {
		s.reasons = map[string]int{}
	}
	s.reasons[reason]++
}

// driver runs the phones against the switch.
type driver struct {
	merchants []merchant
	timeout   time.Duration
	think     time.Duration
	progress  time.Duration // how often drive logs progress; 0: never
	lg        *logger

	started, confirmed, missed atomic.Int64 // payments so far, for the progress log
}

// drive lets concurrency workers take phones from pool and make one payment each time,
// until duration has passed or stop ends; payments in flight then finish (each is
// bounded by the phone's timeouts). It returns the workers' stats and the time the load
// took.
func (d *driver) drive(stop context.Context, pool chan *phone, concurrency int, duration time.Duration) ([]stats, time.Duration) {
	start := time.Now()
	stop, cancel := context.WithDeadline(stop, start.Add(duration))
	defer cancel()
	// Payments in flight are not cut short by stop: a phone abandoned halfway would
	// leave the books and the phone's view apart.
	work := context.WithoutCancel(stop)
	all := make([]stats, concurrency)
	var wg sync.WaitGroup
	if d.progress > 0 {
		done := make(chan struct{})
		defer close(done)
		go d.logProgress(start, done)
	}
	for i := range all {
		st := &all[i]
		wg.Go(func() {
			for stop.Err() == nil {
				var p *phone
				select {
				case p = <-pool:
				case <-stop.Done():
					return
				}
				d.pay(work, p, st)
				pool <- p
			}
		})
	}
	wg.Wait()
	return all, time.Since(start)
}

// logProgress logs the counts every d.progress until done is closed.
func (d *driver) logProgress(start time.Time, done <-chan struct{}) {
	t := time.NewTicker(d.progress)
	defer t.Stop()
	prev, prevAt := int64(0), start
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			c := d.confirmed.Load()
			d.lg.printf("progress: %s payments=%d confirmed=%d not_confirmed=%d confirmed/s=%.1f",
				now.Sub(start).Round(100*time.Millisecond), d.started.Load(), c, d.missed.Load(),
				float64(c-prev)/now.Sub(prevAt).Seconds())
			prev, prevAt = c, now
		}
	}
}

// pay makes one payment from p: PAY, the code, the receipt. On a missing answer it
// cancels, so that the phone can pay again.
func (d *driver) pay(ctx context.Context, p *phone, st *stats) {
	ok := false
	d.started.Add(1)
	defer func() {
		if ok {
			d.confirmed.Add(1)
		} else {
			d.missed.Add(1)
		}
	}()
	p.drain()
	till := d.merchants[rand.IntN(len(d.merchants))].code
	major := 10 + rand.Int64N(491) // KES 10 to 500
	p.payments++
	st.payments++
	start := time.Now()
	if err := p.sim.SendMO(ctx, p.msisdn, shortcode, fmt.Sprintf("PAY %s %d", till, major)); err != nil {
		st.fail("send PAY: " + err.Error())
		return
	}

	// The code SMS names the till and the amount; an earlier payment's late code SMS
	// does not pass for this one's.
	m, got := d.await(p, func(m sms) bool {
		return m.kind == kindCode && m.till == till && m.amount == major*100 ||
			m.kind == kindOther || m.kind == kindPending
	})
	switch {
	case !got:
		st.fail("no code SMS in time")
		d.cancel(ctx, p)
		return
	case m.kind == kindPending:
		st.fail("refused: another payment waits for its code")
		d.cancel(ctx, p)
		return
	case m.kind != kindCode:
		st.fail("refused: " + firstWords(m.text, 4))
		return
	}
	id := m.id
	p.note(m)
	gotCode := time.Now()
	if d.think > 0 {
		time.Sleep(d.think)
	}
	thought := time.Since(gotCode)
	if err := p.sim.SendMO(ctx, p.msisdn, shortcode, m.code); err != nil {
		st.fail("send code: " + err.Error())
		d.cancel(ctx, p)
		return
	}
	m, got = d.await(p, func(m sms) bool {
		return m.kind == kindReceipt && m.id == id || m.kind == kindOther
	})
	switch {
	case !got:
		st.fail("no receipt in time")
		d.cancel(ctx, p)
	case m.kind == kindReceipt:
		ok = true
		p.confirmed[id]++
		st.latencies = append(st.latencies, time.Since(start)-thought)
	default:
		st.fail("code refused: " + firstWords(m.text, 4))
		d.cancel(ctx, p)
	}
}

// await waits up to the timeout for an MT that done accepts, noting every other.
func (d *driver) await(p *phone, done func(sms) bool) (sms, bool) {
	return awaitSMS(p, d.timeout, done)
}

// awaitSMS waits up to timeout for an MT to p that done accepts, noting every other.
func awaitSMS(p *phone, timeout time.Duration, done func(sms) bool) (sms, bool) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case mt := <-p.inbox:
			m := readSMS(mt.Text)
			if done(m) {
				return m, true
			}
			p.note(m)
		case <-t.C:
			return sms{}, false
		}
	}
}

// cancel sends CANCEL and waits for its answer, so that the phone's next PAY is not
// refused for a payment still waiting for its code.
func (d *driver) cancel(ctx context.Context, p *phone) {
	if err := p.sim.SendMO(ctx, p.msisdn, shortcode, "CANCEL"); err != nil {
		return
	}
	d.await(p, func(m sms) bool { return m.kind == kindCancelled })
}

// firstWords shortens a refusal for the failure summary, without the payment ID.
func firstWords(text string, n int) string {
	if id := leadingID(text); id != "" {
		text = "<id>" + text[len(id):]
	}
	w := strings.Fields(text)
	if len(w) > n {
		w = w[:n]
	}
	return strings.Join(w, " ")
}
