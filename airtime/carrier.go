package airtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/internal/mask"
)

// reasonCircuitOpen is the Reason of every Unknown the breaker causes.
const reasonCircuitOpen = "carrier unavailable (circuit open)"

// Carrier is one carrier's airtime API. It is safe for concurrent use.
type Carrier struct {
	name    string
	url     *url.URL // where top-ups are POSTed; lookups go to url/<reference>
	token   string   // bearer token; never logged
	timeout time.Duration
	client  *http.Client
	log     zerolog.Logger // carries the carrier's name
	m       *metrics
	br      *breaker
	tries   int           // POSTs per Credit before the lookup
	backoff time.Duration // wait before the second POST, doubled before each later one
}

// Name is the carrier's name from its configuration.
func (c *Carrier) Name() string { return c.name }

// Credit sends the top-up, retrying timeouts, transport errors and other trouble with the
// same reference (3 tries, waiting 200 ms then 400 ms, bounded by ctx and by the
// carrier's timeout per try), and if it still has no definite answer looks the reference
// up with GET <url>/<reference>.
//
// It returns Success or Failed only when the carrier said so definitely (see the package
// documentation for how answers are read), and Unknown otherwise, with a Reason for
// operators: the caller keeps the payment pending and asks again later with Resolve.
// A Request that fails Validate is never sent; it returns Failed with the validation
// error as Reason, since the carrier cannot have credited what it never received.
func (c *Carrier) Credit(ctx context.Context, r Request) Result {
	return c.finish("credit", r, func() Result { return c.send(ctx, r, false) })
}

// Resolve asks what became of an earlier top-up, with GET <url>/<reference> only: Success
// or Failed if the carrier knows the reference. If it answers 404 (it never saw it) the
// top-up is sent again as Credit would (safe: the same reference cannot credit twice)
// and that outcome is returned, except that a refusal is checked with one more lookup
// before it is believed. Unknown on trouble.
func (c *Carrier) Resolve(ctx context.Context, r Request) Result {
	return c.finish("resolve", r, func() Result {
		l := c.lookup(ctx, r)
		switch l.reply {
		case replySuccess:
			return Result{Outcome: Success, CarrierReference: l.carrierRef}
		case replyFailed:
			return Result{Outcome: Failed, Reason: l.reason}
		case replyNotFound:
			return c.send(ctx, r, true)
		}
		return Result{Outcome: Unknown, Reason: "lookup: " + l.reason}
	})
}

// finish validates r, runs call, and counts and logs its result.
func (c *Carrier) finish(op string, r Request, call func() Result) Result {
	start := time.Now()
	var res Result
	if err := r.Validate(); err != nil {
		c.log.Error().Err(err).Str("op", op).Str("reference", r.Reference).Str("msisdn", mask.MSISDN(r.MSISDN)).
			Msg("airtime request not sent: it is malformed")
		res = Result{Outcome: Failed, Reason: err.Error()}
	} else {
		res = call()
	}
	c.m.requests.WithLabelValues(c.name, string(res.Outcome)).Inc()
	ev := c.log.Info()
	if res.Outcome == Unknown {
		ev = c.log.Warn()
	}
	ev.Str("op", op).Str("reference", r.Reference).Str("msisdn", mask.MSISDN(r.MSISDN)).Int64("amount", r.Amount).
		Str("outcome", string(res.Outcome)).Str("carrier_reference", res.CarrierReference).
		Str("reason", res.Reason).Dur("took", time.Since(start)).Msg("airtime top-up")
	return res
}

// send POSTs the top-up up to c.tries times and falls back to a lookup. verifyFailed
// makes even the first refusal be checked with a lookup (Resolve: earlier POSTs exist).
func (c *Carrier) send(ctx context.Context, r Request, verifyFailed bool) Result {
	body, err := json.Marshal(struct {
		Reference string `json:"reference"`
		MSISDN    string `json:"msisdn"`
		Amount    int64  `json:"amount"`
		Currency  string `json:"currency"`
	}{r.Reference, r.MSISDN, r.Amount, r.Currency})
	if err != nil {
		return Result{Outcome: Unknown, Reason: fmt.Sprintf("encode request: %v", err)}
	}
	// unanswered: an earlier POST of this call got no definite answer, so it may yet
	// reach the carrier (or already have).
	unanswered := false
	var last answer
	for try := 1; try <= c.tries; try++ {
		if try > 1 && !sleep(ctx, c.backoff<<(try-2)) {
			break
		}
		last = c.do(ctx, http.MethodPost, c.url.String(), body, r, try)
		switch last.reply {
		case replySuccess:
			return Result{Outcome: Success, CarrierReference: last.carrierRef}
		case replyFailed:
			if !unanswered && !verifyFailed {
				return Result{Outcome: Failed, Reason: last.reason}
			}
			return c.verifyFailed(ctx, r, last, unanswered)
		}
		if last.circuitOpen || last.cancelled {
			return Result{Outcome: Unknown, Reason: last.reason}
		}
		unanswered = true
	}
	if err := ctx.Err(); err != nil {
		return Result{Outcome: Unknown, Reason: "cancelled: " + err.Error()}
	}
	reason := fmt.Sprintf("no definite answer to %d POSTs (last: %s)", c.tries, last.reason)
	l := c.lookup(ctx, r)
	switch l.reply {
	case replySuccess:
		return Result{Outcome: Success, CarrierReference: l.carrierRef}
	case replyFailed:
		return Result{Outcome: Failed, Reason: l.reason}
	case replyNotFound:
		// Not a refusal: the last POST may still be on its way.
		return Result{Outcome: Unknown, Reason: reason + "; lookup: no record yet"}
	}
	return Result{Outcome: Unknown, Reason: reason + "; lookup: " + l.reason}
}

// verifyFailed checks a refusal that may answer a repeated reference with a lookup,
// because a carrier that (against its contract) refuses duplicates would otherwise make
// the switch return money for airtime it has credited.
func (c *Carrier) verifyFailed(ctx context.Context, r Request, refusal answer, unanswered bool) Result {
	l := c.lookup(ctx, r)
	switch l.reply {
	case replySuccess:
		c.log.Warn().Str("reference", r.Reference).Str("refusal", refusal.reason).
			Msg("carrier refused a repeated top-up that its lookup shows as credited")
		return Result{Outcome: Success, CarrierReference: l.carrierRef}
	case replyFailed:
		return Result{Outcome: Failed, Reason: l.reason}
	case replyNotFound:
		if !unanswered {
			return Result{Outcome: Failed, Reason: refusal.reason}
		}
		return Result{Outcome: Unknown, Reason: "carrier refused a retry (" + refusal.reason +
			") but has no record of an earlier POST that had no answer"}
	}
	return Result{Outcome: Unknown, Reason: "carrier refused a retry (" + refusal.reason + "); lookup: " + l.reason}
}

// lookup asks GET <url>/<reference>.
func (c *Carrier) lookup(ctx context.Context, r Request) answer {
	return c.do(ctx, http.MethodGet, c.url.JoinPath(r.Reference).String(), nil, r, 0)
}

// sleep waits d or until ctx ends, and reports whether it waited the whole d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// reply is how one HTTP exchange ended.
type reply int

const (
	replyTrouble  reply = iota // no definite answer
	replySuccess               // {"status": "success"}
	replyFailed                // a definite refusal
	replyNotFound              // a lookup's 404: the carrier never saw the reference
)

// answer is one HTTP exchange as the retry logic sees it.
type answer struct {
	reply       reply
	carrierRef  string
	reason      string
	status      int  // HTTP status; 0 if none
	fault       bool // counts against the carrier in its breaker
	cancelled   bool // the caller's ctx ended; says nothing about the carrier
	circuitOpen bool // not sent: the breaker is open
}

// do performs one exchange through the breaker and records its duration. try is the
// POST's number within its call, 0 for a lookup.
func (c *Carrier) do(ctx context.Context, method, target string, body []byte, r Request, try int) answer {
	if err := ctx.Err(); err != nil {
		return answer{cancelled: true, reason: "cancelled: " + err.Error()}
	}
	gen, ok := c.br.allow()
	if !ok {
		return answer{circuitOpen: true, reason: reasonCircuitOpen}
	}
	start := time.Now()
	a := c.exchange(ctx, method, target, body, r.Reference)
	took := time.Since(start)
	c.m.duration.WithLabelValues(c.name).Observe(took.Seconds())
	v := healthy
	switch {
	case a.cancelled:
		v = neutral
	case a.fault:
		v = fault
	}
	c.br.done(gen, v)

	ev := c.log.Debug()
	switch {
	case a.status == http.StatusUnauthorized || a.status == http.StatusForbidden:
		ev = c.log.Error().Str("hint", "check the carrier's airtime token and URL in the configuration")
	case a.reply == replyTrouble && !a.cancelled:
		ev = c.log.Warn()
	}
	ev.Str("method", method).Int("try", try).Str("reference", r.Reference).Str("msisdn", mask.MSISDN(r.MSISDN)).
		Int("status", a.status).Str("reply", a.reply.String()).Str("reason", a.reason).Dur("took", took).
		Msg("airtime exchange")
	return a
}

// exchange sends one request and reads the answer, within the carrier's timeout.
func (c *Carrier) exchange(ctx context.Context, method, target string, body []byte, ref string) answer {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, method, target, rd)
	if err != nil {
		return answer{reason: fmt.Sprintf("build request: %v", err)}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "payswitch-airtime/1")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return c.transportTrouble(ctx, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		a := c.transportTrouble(ctx, err)
		a.status = resp.StatusCode
		return a
	}
	a := classify(method, resp.StatusCode, data, ref)
	a.status = resp.StatusCode
	return a
}

// transportTrouble describes a request that got no complete answer. The error text
// is taken without the URL, which may carry credentials in its query.
func (c *Carrier) transportTrouble(ctx context.Context, err error) answer {
	if ctx.Err() != nil {
		return answer{cancelled: true, reason: "cancelled: " + ctx.Err().Error()}
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return answer{fault: true, reason: fmt.Sprintf("no answer within %s", c.timeout)}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return answer{fault: true, reason: "carrier unreachable: " + clean(err.Error(), 200)}
}

// refusals are the 4xx statuses that mean the carrier turned the request away before
// acting on it, so nothing was credited.
var refusals = map[int]bool{400: true, 401: true, 403: true, 404: true, 405: true, 410: true,
	411: true, 413: true, 414: true, 415: true, 422: true}

// classify reads an HTTP answer to a POST or a lookup (see the package documentation).
func classify(method string, status int, data []byte, ref string) answer {
	code := fmt.Sprintf("HTTP %d", status)
	switch {
	case status >= 200 && status < 300:
		b, problem := parse(data, ref)
		if problem != "" {
			return answer{fault: true, reason: code + " with " + problem}
		}
		return b
	case method == http.MethodGet && status == http.StatusNotFound:
		return answer{reply: replyNotFound, reason: "carrier has no record of the reference"}
	case status >= 500, status == http.StatusRequestTimeout, status == http.StatusTooManyRequests:
		return answer{fault: true, reason: code}
	case method == http.MethodPost && refusals[status]:
		b, problem := parse(data, ref)
		switch {
		case problem == "" && b.reply == replySuccess:
			return answer{reason: code + " with status success: contradictory"}
		case problem == "" && b.reason != defaultRefusal:
			b.reason += " (" + code + ")"
			return b
		}
		return answer{reply: replyFailed, reason: defaultRefusal + " (" + code + ")"}
	case status >= 300 && status < 400:
		return answer{reason: code + " redirect: check the carrier's URL"}
	}
	return answer{reason: code}
}

// defaultRefusal is the Reason of a refusal that gave none.
const defaultRefusal = "refused by the carrier"

// parse reads a carrier's JSON answer strictly. problem is non-empty when the answer is
// no answer: unreadable, without a known status, or about another reference.
func parse(data []byte, ref string) (a answer, problem string) {
	if len(data) > maxBody {
		return a, "an answer over 64 KiB"
	}
	var b struct {
		Status           string  `json:"status"`
		CarrierReference string  `json:"carrier_reference"`
		Reason           string  `json:"reason"`
		Reference        *string `json:"reference"` // not in the contract; checked if present
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return a, "an unreadable answer: " + clean(err.Error(), 100)
	}
	if b.Reference != nil && *b.Reference != ref {
		return a, fmt.Sprintf("an answer about reference %q", clean(*b.Reference, 64))
	}
	switch b.Status {
	case "success":
		return answer{reply: replySuccess, carrierRef: clean(b.CarrierReference, 128)}, ""
	case "failed":
		reason := clean(b.Reason, 160)
		if reason == "" {
			reason = defaultRefusal
		}
		return answer{reply: replyFailed, reason: reason}, ""
	case "":
		return a, "no status"
	}
	return a, fmt.Sprintf("unknown status %q", clean(b.Status, 32))
}

func (r reply) String() string {
	switch r {
	case replySuccess:
		return "success"
	case replyFailed:
		return "failed"
	case replyNotFound:
		return "not_found"
	}
	return "trouble"
}
