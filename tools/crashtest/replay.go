package main

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"
)

// replay sends codes again after the kills: codes of completed payments and of
// payments that failed, expired or were cancelled, from the phone that had them. A
// phone with nothing waiting must be told so; a phone with a payment waiting must be
// told the code is wrong (an old code is not the new payment's). Then nothing may
// have moved. It returns how many codes it sent.
func (h *harness) replay(ctx context.Context, phones []*phone, views map[*phone]walletView) (int, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex // guards sent and first
		sent  int
		first error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = err
		}
	}
	type job struct {
		p     *phone
		codes []*attempt
		texts []string // what the phone sends: each code, bare or as "OK <code>"
		wait  *payment // the payment waiting for a code, if any
	}
	var jobs []job
	for _, p := range phones {
		if len(p.stalls) > 0 {
			continue // it may still have messages on their way
		}
		v := views[p]
		state := map[string]string{}
		var wait *payment
		for i, pay := range v.pays {
			state[pay.ID] = pay.State
			if pay.State == "pending_otp" {
				wait = &v.pays[i]
			}
		}
		var used, dead []*attempt
		for _, a := range p.attempts {
			switch st := state[a.id]; {
			case a.code == "" || st == "":
			case st == "completed":
				used = append(used, a)
			case st != "pending_otp":
				dead = append(dead, a)
			}
		}
		var codes []*attempt
		if len(used) > 0 {
			codes = append(codes, used[h.rng.IntN(len(used))])
		}
		if len(dead) > 0 && wait == nil {
			codes = append(codes, dead[h.rng.IntN(len(dead))])
		}
		if wait != nil && len(codes) > 1 {
			codes = codes[:1] // one wrong code for the waiting payment is enough
		}
		if len(codes) > 0 {
			j := job{p: p, codes: codes, wait: wait}
			for _, a := range codes {
				if h.rng.IntN(2) == 0 {
					j.texts = append(j.texts, "OK "+a.code)
				} else {
					j.texts = append(j.texts, a.code)
				}
			}
			jobs = append(jobs, j)
		}
	}
	for _, j := range jobs {
		wg.Go(func() {
			for i, a := range j.codes {
				text := j.texts[i]
				mark := h.mail.mark(j.p.msisdn)
				sentAt := time.Now()
				if err := h.drv.send(ctx, j.p.msisdn, text); err != nil {
					fail(err)
					return
				}
				mu.Lock()
				sent++
				mu.Unlock()
				var bad string
				_, _, err := h.mail.await(ctx, j.p.msisdn, mark, h.o.answerWait, func(t string) bool {
					if isReceipt(t, a.id) || j.wait != nil && isReceipt(t, j.wait.ID) {
						// A copy of a receipt the phone had before the replay is the
						// outbox sending it again (at least once: the switch died
						// between the SMSC's acceptance and its record of it, or a
						// submit timed out), not an answer. The phone still needs its
						// answer, so a switch that answered with a copy alone fails as
						// unanswered. (Other texts, such as "no payment waiting", are
						// the same every time and are answers however often they came.)
						if h.mail.hadBefore(j.p.msisdn, mark, t) {
							return false
						}
						bad = t
						return true
					}
					if t == textNoPending {
						return true // and the payment that waited, if any, expired meanwhile
					}
					if j.wait == nil {
						return false
					}
					_, over := finalFor(t, j.wait.ID)
					return isWrongCode(t, j.wait.ID) || over || strings.Contains(t, "Payments are locked")
				})
				switch {
				case errors.Is(err, errNoAnswer):
					fail(violated(invAnswered, "%s: no answer within %s to the replayed code of %s", j.p.msisdn, h.o.answerWait, a.id))
					return
				case err != nil:
					fail(err)
					return
				case bad != "":
					fail(violated(invCodeOnce, "%s: the replayed code of %s (%s) was answered %q (sent after MT %d at %s); the phone's MTs:%s",
						j.p.msisdn, a.id, a.outcome, bad, mark, sentAt.Format("15:04:05.000"), h.mail.history(j.p.msisdn)))
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return sent, first
	}
	// An answer taken above may have been a copy of an older one; once the sync is
	// answered, every replayed code has surely been handled.
	if len(jobs) > 0 {
		if err := h.sync(ctx, jobs[0].p); err != nil {
			return sent, err
		}
	}
	for _, j := range jobs {
		after, err := h.readWallet(ctx, j.p)
		if err != nil {
			return sent, err
		}
		if err := checkUnmoved(j.p, views[j.p], after, "replaying old codes"); err != nil {
			return sent, err
		}
		if err := checkWallet(j.p, after); err != nil {
			return sent, err
		}
		views[j.p] = after
	}
	seen := map[*merchant]bool{}
	for _, j := range jobs {
		if m := j.p.merchant; !seen[m] {
			seen[m] = true
			if err := h.checkMerchant(ctx, m, views); err != nil {
				return sent, err
			}
		}
	}
	return sent, nil
}

// sync sends BAL from p and waits for the answer. The simulator delivers messages one
// at a time in the order they were sent, and the switch answers each after committing
// it, so once the answer is there every message sent before it has been handled.
func (h *harness) sync(ctx context.Context, p *phone) error {
	mark := h.mail.mark(p.msisdn)
	if err := h.drv.send(ctx, p.msisdn, "BAL"); err != nil {
		return err
	}
	_, _, err := h.mail.await(ctx, p.msisdn, mark, h.o.answerWait, func(t string) bool {
		return strings.HasPrefix(t, "Balance ")
	})
	if errors.Is(err, errNoAnswer) {
		return violated(invAnswered, "%s: no answer to BAL within %s", p.msisdn, h.o.answerWait)
	}
	return err
}
