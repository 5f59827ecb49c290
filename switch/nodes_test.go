package payswitch_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/ledger"

	. "github.com/payswitch/payswitch/switch"
)

// Two switch nodes deciding at once (contract section 13): every rule holds across them.
// Each test runs on both drivers: on PostgreSQL the nodes are two store.DBs (two
// connection pools, as two serve processes) on one database; on SQLite, whose file has
// one writer, they are two engines on the one DB, where the same races are serialised
// by the writer. After each race the books balance, no balance is below zero and no hold
// outlives its payment's wait.

// racers is how many goroutines race in each round, half on each node.
const racers = 8

// nodes are the engines of two nodes on h's database: h's own and a new one.
func (h *harness) nodes() [2]*Engine {
	h.t.Helper()
	return [2]*Engine{h.engine, h.rig.Node().Engine}
}

// race runs fn in n goroutines released at once, goroutine i on node i%2, and waits for
// them.
func race(n int, nodes [2]*Engine, fn func(i int, e *Engine)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i, nodes[i%2])
		}()
	}
	close(start)
	wg.Wait()
}

// assertSound checks what must hold after any race: the ledger verifies (its chain, and
// debits equal to credits), no customer account is below zero, and no hold is still
// pending for a payment that no longer waits for its code.
func (h *harness) assertSound() {
	h.t.Helper()
	h.assertBalanced()
	ctx := context.Background()
	var negative, leaked int
	if err := h.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM accounts
		WHERE type IN ('wallet', 'merchant', 'agent') AND credits_posted - debits_posted - debits_pending < 0`).Scan(&negative); err != nil {
		h.t.Fatal(err)
	}
	if err := h.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM holds AS o JOIN payments AS p ON p.id = o.payment_id
		WHERE o.state = 'pending' AND p.state <> 'pending_otp'`).Scan(&leaked); err != nil {
		h.t.Fatal(err)
	}
	if negative != 0 || leaked != 0 {
		h.t.Fatalf("%d accounts below zero, %d holds of payments that no longer wait", negative, leaked)
	}
}

// countPayments is how many of msisdn's payments are in state.
func (h *harness) countPayments(msisdn string, state State) int {
	h.t.Helper()
	var n int
	if err := h.db.Reader().QueryRowContext(context.Background(),
		`SELECT count(*) FROM payments WHERE payer_msisdn = ? AND state = ?`, msisdn, state).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// movedTwice are the payments that entered state more than once: a sweep or a decision
// applied twice.
func (h *harness) movedTwice(state State) []string {
	h.t.Helper()
	rows, err := h.db.Reader().QueryContext(context.Background(), `SELECT payment_id FROM payment_events
		WHERE to_state = ? GROUP BY payment_id HAVING count(*) > 1`, state)
	if err != nil {
		h.t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			h.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// TestNodesWaitOnePaymentPerNumber: one number sends PAY to both nodes at once, many
// times: one payment waits, holding its amount once; the others are told it waits.
func TestNodesWaitOnePaymentPerNumber(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t)
		payer, shop := h.wallet(alice, 1000000), h.merchant("55501", mama)
		nodes := h.nodes()
		const rounds = 6
		for r := range rounds {
			race(racers, nodes, func(_ int, e *Engine) {
				if err := e.HandleSMS(ctx, alice, "PAY 55501 100"); err != nil {
					t.Errorf("round %d: %v", r, err)
				}
			})
			if n, held := h.countPayments(alice, StatePendingOTP), h.balance(payer.ID).Held; n != 1 || held != 10000 {
				t.Fatalf("round %d: %d payments waiting, %d held; want 1 holding 10000", r, n, held)
			}
			h.sms(alice, h.codeIn(alice, "otp"))
		}
		if got, want := h.balance(shop.ID).Posted, int64(rounds*10000); got != want {
			t.Fatalf("shop has %d, want %d", got, want)
		}
		h.assertSound()
	})
}

// TestNodesUseACodeOnce: the right code sent to both nodes at once confirms the payment
// once; the other attempts find nothing waiting.
func TestNodesUseACodeOnce(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t)
		payer, shop := h.wallet(alice, 1000000), h.merchant("55501", mama)
		nodes := h.nodes()
		const rounds = 6
		for r := range rounds {
			h.sms(alice, "PAY 55501 150")
			code := h.code(alice)
			var mu sync.Mutex
			confirmed := 0
			race(racers, nodes, func(_ int, e *Engine) {
				out, err := e.Confirm(ctx, ChannelSMS, alice, "", code)
				if err != nil {
					t.Errorf("round %d: %v", r, err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if out.OK() {
					confirmed++
				} else if out.Problem != ProblemNoPending {
					t.Errorf("round %d: %s, want %s", r, out.Problem, ProblemNoPending)
				}
			})
			if confirmed != 1 {
				t.Fatalf("round %d: confirmed %d times", r, confirmed)
			}
		}
		if p, s := h.balance(payer.ID), h.balance(shop.ID); p.Posted != 1000000-rounds*15000 || p.Held != 0 || s.Posted != rounds*15000 {
			t.Fatalf("payer %+v, shop %+v", p, s)
		}
		h.assertSound()
	})
}

// TestNodesConfirmOrExpireOnce: a payment confirmed on one node while the other node's
// expiry sweeper, whose clock has passed its deadline, expires it: exactly one of the
// two happens, and the money follows it.
func TestNodesConfirmOrExpireOnce(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t)
		payer, shop := h.wallet(alice, 1000000), h.merchant("55501", mama)
		late := h.rig.NodeAt(5*time.Minute + time.Second).Engine // past every code's deadline
		const rounds = 10
		var completed, expired int
		for r := range rounds {
			h.sms(alice, "PAY 55501 100")
			p, code := h.pendingOf(alice), h.code(alice)
			race(2, [2]*Engine{h.engine, late}, func(i int, e *Engine) {
				var err error
				if i == 0 {
					_, err = e.Confirm(ctx, ChannelSMS, alice, "", code)
				} else {
					_, err = e.ExpireDue(ctx)
				}
				if err != nil {
					t.Errorf("round %d: %v", r, err)
				}
			})
			switch st := h.payment(p.ID).State; st {
			case StateCompleted:
				completed++
			case StateExpired:
				expired++
			default:
				t.Fatalf("round %d: %s", r, st)
			}
		}
		if b, s := h.balance(payer.ID), h.balance(shop.ID); b.Posted != 1000000-int64(completed)*10000 || b.Held != 0 ||
			s.Posted != int64(completed)*10000 {
			t.Fatalf("%d completed, %d expired: payer %+v, shop %+v", completed, expired, b, s)
		}
		if twice := append(h.movedTwice(StateCompleted), h.movedTwice(StateExpired)...); len(twice) > 0 {
			t.Fatalf("moved twice: %v", twice)
		}
		t.Logf("%d completed, %d expired", completed, expired)
		h.assertSound()
	})
}

// TestNodesKeepTheDailyLimit: a number confirms a merchant's request on one node while
// it asks for a payment of its own on the other, each of which alone fits the day's
// limit and both together do not: one goes through.
func TestNodesKeepTheDailyLimit(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t)
		h.cfg.DailyMax = 30000
		h.restart()
		h.wallet(alice, 1000000)
		shop := h.merchant("55501", mama)
		nodes := h.nodes()
		const rounds = 6
		for r := range rounds {
			h.clock.Advance(24 * time.Hour) // a new day, and yesterday's waits are overdue
			req := h.requestTo(shop, alice, 20000, fmt.Sprint("INV-", r))
			code := h.codeIn(alice, "request")
			var oks [2]bool
			race(2, nodes, func(i int, e *Engine) {
				var out Outcome
				var err error
				if i == 0 {
					out, err = e.Confirm(ctx, ChannelSMS, alice, req.ID, code)
				} else {
					out, err = e.Request(ctx, Request{Channel: ChannelSMS, Type: MerchantPayment, Payer: alice,
						Merchant: "55501", Amount: 20000})
				}
				if err != nil {
					t.Errorf("round %d: %v", r, err)
				}
				oks[i] = out.OK()
			})
			if oks[0] == oks[1] {
				t.Fatalf("round %d: request confirmed %v, own payment started %v; want one of them", r, oks[0], oks[1])
			}
			var spent int64
			if err := h.db.Reader().QueryRowContext(ctx, `SELECT COALESCE(SUM(amount), 0) FROM payments
				WHERE payer_msisdn = ? AND state IN ('pending_otp', 'completed') AND created_at >= ?`,
				alice, h.clock.Now().Add(-time.Hour).UnixMicro()).Scan(&spent); err != nil {
				t.Fatal(err)
			}
			if spent != 20000 {
				t.Fatalf("round %d: %d committed today, want 20000 of the limit of 30000", r, spent)
			}
		}
		h.assertSound()
	})
}

// TestNodesKeepABalanceCap: two payers' transfers to one wallet are confirmed on two
// nodes at once; each fits under the wallet's tier's balance cap, both do not: one
// completes.
func TestNodesKeepABalanceCap(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t)
		open := Tier{MaxPayment: 15000000, DailyMax: 30000000}
		capped := open
		capped.MaxBalance = 30000
		h.cfg.Tiers = [3]Tier{open, capped, open}
		h.restart()
		unregistered := TierUnregistered
		payers := []string{alice, "254700000003"}
		for _, n := range payers { // payers uncapped
			a, err := h.engine.OpenAccount(ctx, OpenAccount{Type: ledger.Wallet, Name: "W " + n, MSISDN: n, Tier: &unregistered})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.engine.Deposit(ctx, Deposit{Account: a.ID, Amount: 1000000, Reference: "seed-" + n}); err != nil {
				t.Fatal(err)
			}
		}
		nodes := h.nodes()
		const rounds = 6
		for r := range rounds {
			payee := fmt.Sprintf("25470000010%d", r) // at DefaultTier, capped
			to := h.wallet(payee, 0)
			codes := make([]string, len(payers))
			for i, n := range payers {
				h.sms(n, "SEND 0"+payee[3:]+" 200")
				codes[i] = h.code(n)
			}
			race(2, nodes, func(i int, e *Engine) {
				if _, err := e.Confirm(ctx, ChannelSMS, payers[i], "", codes[i]); err != nil {
					t.Errorf("round %d: %v", r, err)
				}
			})
			if got := h.balance(to.ID).Posted; got != 20000 {
				t.Fatalf("round %d: the payee has %d, want one transfer of 20000 under the cap of 30000", r, got)
			}
		}
		h.assertSound()
	})
}

// TestNodesRateLimitAMerchant: a merchant's requests to many numbers, sent to two nodes
// at once, are counted together against its cap per minute.
func TestNodesRateLimitAMerchant(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t)
		h.cfg.Requests = RequestLimits{PerMerchantPerMinute: 5}
		h.restart()
		shop := h.merchant("55501", mama)
		const numbers = 16
		for i := range numbers {
			h.wallet(fmt.Sprintf("2547000002%02d", i), 0)
		}
		nodes := h.nodes()
		var mu sync.Mutex
		sent := 0
		race(numbers, nodes, func(i int, e *Engine) {
			_, err := e.RequestPayment(ctx, PaymentRequest{Merchant: shop.ID, MSISDN: fmt.Sprintf("2547000002%02d", i),
				Amount: 10000, Reference: fmt.Sprint("INV-", i)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				sent++
			case !errors.Is(err, ErrRateLimited):
				t.Errorf("request %d: %v", i, err)
			}
		})
		if sent != 5 {
			t.Fatalf("%d requests sent in one minute, want the cap of 5", sent)
		}
	})
}

// TestNodesBookAReferenceOnce: an operator's deposit, and a merchant's request, repeated
// under one reference on two nodes at once make one payment, which every repetition
// returns.
func TestNodesBookAReferenceOnce(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t)
		payer, shop := h.wallet(alice, 0), h.merchant("55501", mama)
		nodes := h.nodes()
		const rounds = 4
		for r := range rounds {
			ids := make([]string, racers)
			race(racers, nodes, func(i int, e *Engine) {
				p, err := e.Deposit(ctx, Deposit{Account: payer.ID, Amount: 5000, Reference: fmt.Sprint("DEP-", r)})
				if err != nil {
					t.Errorf("deposit %d: %v", r, err)
					return
				}
				ids[i] = p.ID
			})
			requests := make([]string, racers)
			race(racers, nodes, func(i int, e *Engine) {
				p, err := e.RequestPayment(ctx, PaymentRequest{Merchant: shop.ID, MSISDN: alice, Amount: 1000,
					Reference: fmt.Sprint("INV-", r)})
				if err != nil {
					t.Errorf("request %d: %v", r, err)
					return
				}
				requests[i] = p.ID
			})
			for i := range racers {
				if ids[i] != ids[0] || requests[i] != requests[0] {
					t.Fatalf("round %d: deposits %v, requests %v; want one of each", r, ids, requests)
				}
			}
			h.clock.Advance(time.Hour) // the request is overdue, and makes way for the next
		}
		if got := h.balance(payer.ID).Posted; got != rounds*5000 {
			t.Fatalf("deposited %d, want %d", got, rounds*5000)
		}
		h.assertSound()
	})
}

// TestNodesRefundWithinThePayment: refunds of one payment under different references on
// two nodes at once give back at most what was paid.
func TestNodesRefundWithinThePayment(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t)
		p, payer, shop := h.paid() // KES 150
		nodes := h.nodes()
		var mu sync.Mutex
		refunded := 0
		race(racers, nodes, func(i int, e *Engine) {
			_, _, err := e.Refund(ctx, RefundRequest{PaymentID: p.ID, Merchant: shop.ID, Amount: 4000,
				Reference: fmt.Sprint("RF-", i)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				refunded++
			case !errors.Is(err, ErrRefundTooMuch):
				t.Errorf("refund %d: %v", i, err)
			}
		})
		if refunded != 3 {
			t.Fatalf("%d refunds of 4000 of a payment of 15000, want 3", refunded)
		}
		if got := h.payment(p.ID).Refunded; got != 12000 {
			t.Fatalf("refunded %d, want 12000", got)
		}
		if b, s := h.balance(payer.ID).Posted, h.balance(shop.ID).Posted; b != 100000-15000+12000 || s != 3000 {
			t.Fatalf("payer %d, shop %d", b, s)
		}
		h.assertSound()
	})
}

// TestNodesExpireEachPaymentOnce: the expiry sweepers of two nodes, run at once, expire
// each overdue payment once and give each hold back once.
func TestNodesExpireEachPaymentOnce(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t)
		h.merchant("55501", mama)
		const payers = 20
		for i := range payers {
			n := fmt.Sprintf("2547000003%02d", i)
			h.wallet(n, 100000)
			h.sms(n, "PAY 55501 100")
		}
		h.clock.Advance(6 * time.Minute)
		race(4, h.nodes(), func(_ int, e *Engine) {
			if _, err := e.ExpireDue(ctx); err != nil {
				t.Error(err)
			}
		})
		for i := range payers {
			n := fmt.Sprintf("2547000003%02d", i)
			if got := h.countPayments(n, StateExpired); got != 1 {
				t.Fatalf("%s: %d payments expired, want 1", n, got)
			}
		}
		if twice := h.movedTwice(StateExpired); len(twice) > 0 {
			t.Fatalf("expired twice: %v", twice)
		}
		h.assertSound()
	})
}

// TestNodesReleaseEachEscrowOnce: the escrow-release sweepers of two nodes, run at once,
// pay each guaranteed payment due to its merchant once.
func TestNodesReleaseEachEscrowOnce(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		h := newEscrowHarness(t)
		const payments = 10
		for range payments {
			h.paid("100")
		}
		h.clock.Advance(169 * time.Hour)
		race(4, h.nodes(), func(_ int, e *Engine) {
			if _, err := e.ReleaseDue(ctx); err != nil {
				t.Error(err)
			}
		})
		if got := h.balance(h.shop.ID).Posted; got != payments*10000 {
			t.Fatalf("the shop has %d, want %d", got, payments*10000)
		}
		if twice := h.movedTwice(StateCompleted); len(twice) > 0 {
			t.Fatalf("released twice: %v", twice)
		}
		h.assertSound()
	})
}

// countingCarrier credits every top-up at once and counts its calls by reference.
type countingCarrier struct {
	mu    sync.Mutex // guards calls
	calls map[string]int
}

func (c *countingCarrier) Carrier(string) (string, bool) { return "carrier-a", true }

func (c *countingCarrier) Credit(_ context.Context, _ string, r AirtimeRequest) AirtimeResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[r.Reference]++
	return AirtimeResult{Outcome: AirtimeSuccess, CarrierReference: "CR-" + r.Reference}
}

func (c *countingCarrier) Resolve(ctx context.Context, carrier string, r AirtimeRequest) AirtimeResult {
	return c.Credit(ctx, carrier, r)
}

// TestNodesAskTheCarrierOnce: the airtime resolvers of two nodes, run at once, ask the
// carrier for each top-up once. (PostgreSQL only: on SQLite one process resolves.)
func TestNodesAskTheCarrierOnce(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		if !pgtest.OnPostgres(t) {
			t.Skip("one switch process runs on a SQLite file, and with it one resolver")
		}
		ctx := context.Background()
		h := newHarness(t)
		c := &countingCarrier{calls: map[string]int{}}
		h.airtime = c
		h.restart()
		const payers = 20
		for i := range payers {
			n := fmt.Sprintf("2547000004%02d", i)
			h.wallet(n, 100000)
			h.sms(n, "TOPUP 50")
			h.sms(n, h.code(n))
		}
		race(4, h.nodes(), func(_ int, e *Engine) {
			if err := e.ResolveAirtime(ctx); err != nil {
				t.Error(err)
			}
		})
		c.mu.Lock()
		defer c.mu.Unlock()
		for i := range payers {
			n := fmt.Sprintf("2547000004%02d", i)
			if got := h.countPayments(n, StateCompleted); got != 1 {
				t.Fatalf("%s: %d top-ups completed", n, got)
			}
		}
		for ref, n := range c.calls {
			if n != 1 {
				t.Errorf("%s: the carrier was asked %d times", ref, n)
			}
		}
		if len(c.calls) != payers {
			t.Fatalf("the carrier was asked for %d top-ups, want %d", len(c.calls), payers)
		}
		h.assertSound()
	})
}
