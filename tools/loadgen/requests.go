package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"sync"
	"sync/atomic"
	"time"
)

// Merchants' requests to pay (contract section 10), run beside the SMS payers with
// -requests: each till has a merchant key, which sets the till's webhook to loadgen's
// receiver (hooks.go); at -requests per second a till's key asks one of the request
// phones (wallets of their own, apart from the SMS payers') to pay, the phone reads the
// code from the request's SMS and replies with it, and the run measures from the API
// call to the payment.completed webhook's arrival.

const (
	// requestTTL is the requests' validity: far longer than a phone waits, so that
	// none expires while its phone still answers it.
	requestTTL = "10m"
	// requestDescription has no digits, so that the code stays the only run of six.
	requestDescription = "loadgen order"
	// requestPhonesMin is the fewest request phones -request-phones 0 opens.
	requestPhonesMin = 20
	// requestMSISDNBase numbers the request phones, apart from the SMS payers (2547100…)
	// and the tills (2547900…).
	requestMSISDNBase = 50_000_000
)

// requestPhoneCount is -request-phones, or when it is 0 enough phones that each is free
// again long before its turn: the rate times the longest a request can hold its phone
// (the request's SMS, then the receipt, each within the timeout, and the typing between).
func requestPhoneCount(o options) int {
	if o.requestPhones > 0 {
		return o.requestPhones
	}
	n := int(math.Ceil(o.requests * (2*o.timeout + o.think).Seconds()))
	return min(max(n, requestPhonesMin), maxRequestPhones)
}

// newRequestPhones makes the request phones; they pay no one by themselves.
func newRequestPhones(n int) []*phone {
	phones := make([]*phone, n)
	for i := range phones {
		phones[i] = newPhone(fmt.Sprintf("2547%08d", requestMSISDNBase+i))
	}
	return phones
}

// hookTill is a till that sends requests, with its merchant key.
type hookTill struct {
	merchant
	api    *client // the merchant's key
	secret []byte  // its webhook's
}

// setupHooks gives every till a merchant key and, through that key, a webhook to a
// receiver it starts here, each till with a secret of its own.
func setupHooks(ctx context.Context, api *client, merchants []merchant) ([]hookTill, *hookReceiver, error) {
	tills := make([]hookTill, len(merchants))
	secrets := make(map[string][]byte, len(merchants))
	for i, m := range merchants {
		tills[i] = hookTill{merchant: m, secret: []byte(randomHex(24))}
		secrets[m.code] = tills[i].secret
	}
	recv, err := startHookReceiver(secrets, time.Now)
	if err != nil {
		return nil, nil, err
	}
	err = parallel(ctx, len(tills), provisionWorkers, func(ctx context.Context, i int) error {
		t := &tills[i]
		key, err := api.createMerchantKey(ctx, t.id, "loadgen")
		if err != nil {
			return err
		}
		t.api = api.withToken(key)
		return t.api.setWebhook(ctx, t.id, recv.url(i, t.code), string(t.secret))
	})
	if err != nil {
		recv.close()
		return nil, nil, fmt.Errorf("merchant keys and webhooks: %w", err)
	}
	return tills, recv, nil
}

// requestRecord is one request the API accepted.
type requestRecord struct {
	id      string
	till    string
	start   time.Time     // just before the API call
	thought time.Duration // the phone's own time between the request's SMS and its reply
	// When the API answered, the request's SMS came, the code went and the receipt came
	// (zero: not reached), for the breakdown of the latency.
	answered, gotSMS, replied, receipt time.Time
}

// requestStats is what the request phones measured; safe for concurrent use.
type requestStats struct {
	mu       sync.Mutex // guards the fields below
	requests int        // API calls made
	skipped  int        // requests not started: every request phone was busy
	records  []requestRecord
	reasons  map[string]int // why requests did not complete in time
}

func (s *requestStats) fail(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reasons == nil {
		s.reasons = map[string]int{}
	}
	s.reasons[reason]++
}

// requester runs the request phones against the switch.
type requester struct {
	tills    []hookTill
	rate     float64 // requests started per second
	timeout  time.Duration
	think    time.Duration
	progress time.Duration // how often drive logs progress; 0: never
	lg       *logger

	seq                        atomic.Int64 // numbers the references
	started, confirmed, missed atomic.Int64 // requests so far, for the progress log
}

// drive starts a request every 1/rate seconds with a free phone from pool, until
// duration has passed or stop ends; a tick that finds every phone busy is skipped, not
// made up later, so the rate offered is never above -requests. Requests in flight then
// finish. It returns the stats and the time the load took.
func (r *requester) drive(stop context.Context, pool chan *phone, duration time.Duration) (*requestStats, time.Duration) {
	start := time.Now()
	stop, cancel := context.WithDeadline(stop, start.Add(duration))
	defer cancel()
	work := context.WithoutCancel(stop)
	st := &requestStats{}
	if r.progress > 0 {
		done := make(chan struct{})
		defer close(done)
		go r.logProgress(start, done)
	}
	interval := time.Duration(float64(time.Second) / r.rate)
	tick := time.NewTimer(0)
	defer tick.Stop()
	var wg sync.WaitGroup
	for n := 1; ; n++ {
		select {
		case <-stop.Done():
			wg.Wait()
			return st, time.Since(start)
		case <-tick.C:
		}
		select {
		case p := <-pool:
			wg.Go(func() {
				r.request(work, p, st)
				pool <- p
			})
		default:
			st.mu.Lock()
			st.skipped++
			st.mu.Unlock()
		}
		// Ticks are placed from the start, so that a late timer does not slow the rate;
		// one that is already due fires at once.
		tick.Reset(time.Until(start.Add(time.Duration(n) * interval)))
	}
}

// logProgress logs the counts every r.progress until done is closed.
func (r *requester) logProgress(start time.Time, done <-chan struct{}) {
	t := time.NewTicker(r.progress)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			r.lg.printf("progress: %s requests=%d confirmed=%d not_confirmed=%d",
				now.Sub(start).Round(100*time.Millisecond), r.started.Load(), r.confirmed.Load(), r.missed.Load())
		}
	}
}

// request makes one request to pay p, by a random till's key, and answers it as the
// phone: the code from the request's SMS, then the receipt. On a missing answer the
// phone declines (NO), so that the next request to it is not refused as busy.
func (r *requester) request(ctx context.Context, p *phone, st *requestStats) {
	ok := false
	r.started.Add(1)
	defer func() {
		if ok {
			r.confirmed.Add(1)
		} else {
			r.missed.Add(1)
		}
	}()
	p.drain()
	t := &r.tills[rand.IntN(len(r.tills))]
	amount := (10 + rand.Int64N(491)) * 100 // KES 10 to 500
	p.requests++
	rec := requestRecord{till: t.code, start: time.Now()}
	pm, err := t.api.requestPayment(ctx, p.msisdn, amount, fmt.Sprintf("LG%d", r.seq.Add(1)))
	rec.answered = time.Now()
	st.mu.Lock()
	st.requests++
	st.mu.Unlock()
	if err != nil {
		reason := apiRefusal(err)
		st.fail("request refused: " + reason)
		if reason == "payer_busy" {
			r.decline(ctx, p)
		}
		return
	}
	rec.id = pm.ID
	p.known[pm.ID] = attempt{amount: amount, till: t.code}
	defer func() {
		st.mu.Lock()
		st.records = append(st.records, rec)
		st.mu.Unlock()
	}()

	// The phone has no other payment, so any refusal is about this request.
	m, got := awaitSMS(p, r.timeout, func(m sms) bool {
		return m.kind == kindRequest && m.id == pm.ID || m.kind == kindOther
	})
	switch {
	case !got:
		st.fail("no request SMS in time")
		r.decline(ctx, p)
		return
	case m.kind != kindRequest:
		st.fail("request ended: " + firstWords(m.text, 4))
		return
	case m.amount != amount || m.till != t.code:
		st.fail("the request's SMS names another amount or till")
		r.decline(ctx, p)
		return
	}
	rec.gotSMS = time.Now()
	if r.think > 0 {
		time.Sleep(r.think)
	}
	rec.replied = time.Now()
	rec.thought = rec.replied.Sub(rec.gotSMS)
	if err := p.sim.SendMO(ctx, p.msisdn, shortcode, m.code); err != nil {
		st.fail("send code: " + err.Error())
		r.decline(ctx, p)
		return
	}
	m, got = awaitSMS(p, r.timeout, func(m sms) bool {
		return m.kind == kindReceipt && m.id == pm.ID || m.kind == kindOther
	})
	switch {
	case !got:
		st.fail("no receipt in time")
		r.decline(ctx, p)
	case m.kind == kindReceipt:
		ok = true
		rec.receipt = time.Now()
		p.confirmed[pm.ID]++
	default:
		st.fail("code refused: " + firstWords(m.text, 4))
		r.decline(ctx, p)
	}
}

// decline sends NO and waits for its answer: the request declined, or none waiting.
func (r *requester) decline(ctx context.Context, p *phone) {
	if err := p.sim.SendMO(ctx, p.msisdn, shortcode, "NO"); err != nil {
		return
	}
	awaitSMS(p, r.timeout, func(m sms) bool { return m.kind == kindDeclined })
}

// errorCode finds the code of the API's error answer {"error":{"code":"..."}}.
var errorCode = regexp.MustCompile(`"code":\s*"([a-z_]+)"`)

// apiRefusal is what the failure summary says of a refused API call: the error's code,
// or the error.
func apiRefusal(err error) string {
	if m := errorCode.FindStringSubmatch(err.Error()); m != nil {
		return m[1]
	}
	return err.Error()
}
