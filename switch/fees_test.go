package payswitch_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/ledger"
	. "github.com/payswitch/payswitch/switch"
)

// The tariff and cash-out at agents (contract section 14) on the engine, on a real
// database: fees booked to the fees account in the confirming transaction, exact
// balances, holds released, a tariff change that prices only later requests, and
// withdrawals with the agent's commission and SMS.

// bandTariff is a tariff of one flat fee per type that a test may change while the
// engine runs, as an operator's new config would.
type bandTariff struct {
	mu   sync.Mutex
	fees map[string]int64
	max  int64 // amounts above it are past the last band; 0: none are
}

func (b *bandTariff) Fee(typ string, amount int64) (int64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.max > 0 && amount > b.max {
		return 0, false
	}
	return b.fees[typ], true
}

func (b *bandTariff) set(typ string, fee int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fees[typ] = fee
}

// feeHarness is a harness whose engine prices by tariff.
func feeHarness(t *testing.T, tariff *bandTariff) *harness {
	h := newHarness(t)
	h.cfg.Tariff = tariff
	h.restart()
	return h
}

func (h *harness) feesBalance() int64 {
	h.t.Helper()
	a, err := h.ledger.Account(context.Background(), "fees:KES")
	if err != nil {
		return 0 // not made yet: nothing was charged
	}
	return a.Balance.Posted
}

func (h *harness) agent(msisdn string) ledger.Account {
	h.t.Helper()
	a, err := h.engine.OpenAccount(context.Background(), OpenAccount{Type: ledger.Agent, Name: "Agent Kamau", MSISDN: msisdn})
	if err != nil {
		h.t.Fatal(err)
	}
	return a
}

const agentNo = "254700000777"

func TestSendWithFee(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		tariff := &bandTariff{fees: map[string]int64{"transfer": 700}}
		h := feeHarness(t, tariff)
		w := h.wallet(alice, 100000)
		b := h.wallet(bob, 0)

		h.sms(alice, "SEND 0700000002 500")
		if txt := h.last(alice).Text; !strings.Contains(txt, "pay KES 500.00 + fee KES 7.00 to") {
			t.Fatalf("code SMS %q", txt)
		}
		p := h.pendingOf(alice)
		if p.Fee != 700 {
			t.Fatalf("fee %d, want 700", p.Fee)
		}
		if got := h.balance(w.ID); got.Held != 50700 || got.Available != 49300 {
			t.Fatalf("held %+v, want amount + fee held", got)
		}
		// A tariff change now prices later requests only.
		tariff.set("transfer", 2500)
		h.sms(alice, h.code(alice))
		if txt := h.last(alice).Text; !strings.Contains(txt, "KES 500.00 paid to") || !strings.Contains(txt, "fee KES 7.00") ||
			!strings.Contains(txt, "New balance KES 493.00") {
			t.Fatalf("receipt %q", txt)
		}
		if got, fees := h.balance(w.ID), h.feesBalance(); got.Posted != 49300 || got.Held != 0 || fees != 700 {
			t.Fatalf("wallet %+v fees %d", got, fees)
		}
		if got := h.balance(b.ID); got.Posted != 50000 {
			t.Fatalf("bob %+v", got)
		}
		// The fee moved in the confirming transaction: both transfers name the payment.
		trs, err := h.ledger.TransfersOfPayment(context.Background(), p.ID)
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]int64{}
		for _, tr := range trs {
			kinds[tr.Kind] = tr.Amount
		}
		if kinds["transfer"] != 50000 || kinds["fee"] != 700 || len(trs) != 2 {
			t.Fatalf("transfers %+v", trs)
		}
		mini, err := h.engine.MiniText(context.Background(), alice)
		if err != nil || !strings.Contains(mini, "-500.00 fee 7.00") {
			t.Fatalf("MINI %q %v", mini, err)
		}

		// The next one pays the new fee.
		h.sms(alice, "SEND 0700000002 100")
		if p2 := h.pendingOf(alice); p2.Fee != 2500 {
			t.Fatalf("later fee %d, want 2500", p2.Fee)
		}
		h.assertBalanced()
	})
}

func TestFeeFundsCheckAndRelease(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := feeHarness(t, &bandTariff{fees: map[string]int64{"transfer": 700}})
		w := h.wallet(alice, 50000)
		h.wallet(bob, 0)

		// The amount alone fits; amount + fee does not.
		h.sms(alice, "SEND 0700000002 500")
		if txt := h.last(alice).Text; txt != "Insufficient funds: KES 500.00 + fee KES 7.00 is KES 507.00; you have KES 500.00 available. Nothing was paid." {
			t.Fatalf("answer %q", txt)
		}
		if got := h.balance(w.ID); got.Held != 0 || got.Posted != 50000 || h.pendingOf(alice) != nil {
			t.Fatalf("a refusal held %+v", got)
		}

		// Cancelled: amount and fee are both free again.
		h.sms(alice, "SEND 0700000002 400")
		if got := h.balance(w.ID); got.Held != 40700 {
			t.Fatalf("held %+v", got)
		}
		h.sms(alice, "CANCEL")
		if got := h.balance(w.ID); got.Held != 0 || got.Available != 50000 {
			t.Fatalf("after cancel %+v", got)
		}
		if h.feesBalance() != 0 {
			t.Fatalf("fees %d after a cancel", h.feesBalance())
		}
		h.assertBalanced()
	})
}

func TestFeeExpiredAndPastTariff(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		tariff := &bandTariff{fees: map[string]int64{"transfer": 700}, max: 100000}
		h := feeHarness(t, tariff)
		w := h.wallet(alice, 500000)
		h.wallet(bob, 0)

		h.sms(alice, "SEND 0700000002 2000")
		if txt := h.last(alice).Text; !strings.HasPrefix(txt, "The largest payment is") {
			t.Fatalf("past the tariff answered %q", txt)
		}
		h.sms(alice, "SEND 0700000002 100")
		h.clock.Advance(6 * 60e9)
		if _, err := h.engine.ExpireDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := h.balance(w.ID); got.Held != 0 || got.Posted != 500000 {
			t.Fatalf("after expiry %+v", got)
		}
		h.assertBalanced()
	})
}

func TestReversalGivesTheFeeBack(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := feeHarness(t, &bandTariff{fees: map[string]int64{"transfer": 700}})
		w := h.wallet(alice, 100000)
		b := h.wallet(bob, 0)
		h.sms(alice, "SEND 0700000002 500")
		id := h.pendingOf(alice).ID
		h.sms(alice, h.code(alice))
		if _, err := h.engine.Reverse(context.Background(), id, Reversal{Reason: "mistake", Reference: "REV-1"}); err != nil {
			t.Fatal(err)
		}
		if got := h.balance(w.ID); got.Posted != 100000 {
			t.Fatalf("payer after reversal %+v", got)
		}
		if h.balance(b.ID).Posted != 0 || h.feesBalance() != 0 {
			t.Fatalf("bob %+v fees %d", h.balance(b.ID), h.feesBalance())
		}
		if txt := h.last(alice).Text; !strings.Contains(txt, "KES 500.00 and its fee KES 7.00 returned") ||
			!strings.Contains(txt, "New balance KES 1,000.00") {
			t.Fatalf("reversal SMS %q", txt)
		}
		h.assertBalanced()
	})
}

func TestRequestToPayWithFee(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := feeHarness(t, &bandTariff{fees: map[string]int64{"merchant_payment": 300}})
		w := h.wallet(alice, 15200)
		m := h.merchant("55501", "")
		ctx := context.Background()
		p, err := h.engine.RequestPayment(ctx, PaymentRequest{Merchant: m.ID, MSISDN: alice, Amount: 15000, Reference: "INV-1"})
		if err != nil {
			t.Fatal(err)
		}
		if p.Fee != 300 || !strings.Contains(h.last(alice).Text, "requests KES 150.00 + fee KES 3.00") {
			t.Fatalf("request %+v: %q", p, h.last(alice).Text)
		}
		// 152.00 available: not enough for 150.00 + 3.00.
		h.sms(alice, h.requestCode(alice))
		if got, _ := h.engine.Payment(ctx, p.ID); got.State != StateFailed || h.balance(w.ID).Posted != 15200 {
			t.Fatalf("state %s, balance %+v", got.State, h.balance(w.ID))
		}

		if _, err := h.engine.Deposit(ctx, Deposit{Account: w.ID, Amount: 100, Reference: "TOP"}); err != nil {
			t.Fatal(err)
		}
		p, err = h.engine.RequestPayment(ctx, PaymentRequest{Merchant: m.ID, MSISDN: alice, Amount: 15000, Reference: "INV-2"})
		if err != nil {
			t.Fatal(err)
		}
		h.sms(alice, h.requestCode(alice))
		if got, _ := h.engine.Payment(ctx, p.ID); got.State != StateCompleted {
			t.Fatalf("state %s", got.State)
		}
		if h.balance(w.ID).Posted != 0 || h.balance(m.ID).Posted != 15000 || h.feesBalance() != 300 {
			t.Fatalf("wallet %+v merchant %+v fees %d", h.balance(w.ID), h.balance(m.ID), h.feesBalance())
		}
		h.assertBalanced()
	})
}

// requestCode is the code of the newest request SMS to msisdn.
func (h *harness) requestCode(msisdn string) string {
	h.t.Helper()
	m := h.last(msisdn)
	all := codeRun.FindAllStringSubmatch(m.Text, -1)
	if len(all) != 1 {
		h.t.Fatalf("want one code in %q", m.Text)
	}
	return all[0][2]
}

func TestWithdrawAtAgent(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		tariff := &bandTariff{fees: map[string]int64{"withdrawal": 2900, "agent_commission": 1400}}
		h := feeHarness(t, tariff)
		w := h.wallet(alice, 200000)
		ag := h.agent(agentNo)

		h.sms(alice, "WITHDRAW 0700000777 1000")
		if txt := h.last(alice).Text; !strings.Contains(txt, "withdraw KES 1,000.00 cash at agent Agent Kamau 2547****777, fee KES 29.00") {
			t.Fatalf("code SMS %q", txt)
		}
		p := h.pendingOf(alice)
		if p.Type != WithdrawalPayment || p.Fee != 2900 || p.PayeeAccount != ag.ID {
			t.Fatalf("payment %+v", p)
		}
		// A change of the commission now does not touch this withdrawal's.
		tariff.set("agent_commission", 100)
		h.sms(alice, h.code(alice))
		if txt := h.last(alice).Text; !strings.Contains(txt, "Collect KES 1,000.00 cash from agent") ||
			!strings.Contains(txt, "New balance KES 971.00") {
			t.Fatalf("receipt %q", txt)
		}
		note := h.last(agentNo).Text
		for _, want := range []string{p.ID, "KES 1,000.00", "2547****001", "New float KES 1,014.00"} {
			if !strings.Contains(note, want) {
				t.Fatalf("agent SMS %q lacks %q", note, want)
			}
		}
		if h.balance(w.ID).Posted != 97100 || h.balance(ag.ID).Posted != 101400 || h.feesBalance() != 1500 {
			t.Fatalf("wallet %+v agent %+v fees %d", h.balance(w.ID), h.balance(ag.ID), h.feesBalance())
		}
		h.assertBalanced()

		// A reversal (the agent never paid out) takes back the float and the commission.
		if _, err := h.engine.Reverse(context.Background(), p.ID, Reversal{Reason: "no cash", Reference: "REV-W"}); err != nil {
			t.Fatal(err)
		}
		if h.balance(w.ID).Posted != 200000 || h.balance(ag.ID).Posted != 0 || h.feesBalance() != 0 {
			t.Fatalf("after reversal: wallet %+v agent %+v fees %d", h.balance(w.ID), h.balance(ag.ID), h.feesBalance())
		}
		h.assertBalanced()
	})
}

func TestWithdrawRefusals(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := feeHarness(t, &bandTariff{fees: map[string]int64{"withdrawal": 2900, "agent_commission": 1400}})
		w := h.wallet(alice, 200000)
		h.wallet(bob, 0)
		ag := h.agent(agentNo)

		for text, want := range map[string]string{
			"WITHDRAW 0700000002 100": "2547****002 is not an agent",
			"WITHDRAW 0700000555 100": "2547****555 is not an agent",
			"WITHDRAW 0700000777":     "WITHDRAW <agent number> <amount>",
			"WITHDRAW 0700000001 100": "You cannot send money to yourself",
		} {
			h.sms(alice, text)
			if txt := h.last(alice).Text; !strings.Contains(txt, want) {
				t.Errorf("%q answered %q, want %q", text, txt, want)
			}
		}
		if h.balance(w.ID).Held != 0 || h.pendingOf(alice) != nil {
			t.Fatalf("a refusal held %+v", h.balance(w.ID))
		}
		// Cancelled: the amount, fee and commission holds are all released.
		h.sms(alice, "WITHDRAW 0700000777 1000")
		h.sms(alice, "CANCEL")
		if h.balance(w.ID).Held != 0 || h.balance(ag.ID).Held != 0 {
			t.Fatalf("held after cancel: wallet %+v agent %+v", h.balance(w.ID), h.balance(ag.ID))
		}
		if h.balance(ag.ID).Posted != 0 || h.feesBalance() != 0 {
			t.Fatal("a cancelled withdrawal moved money")
		}
		h.assertBalanced()
	})
}

func TestFreePaymentsKeepTheirTexts(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		h.wallet(alice, 100000)
		h.wallet(bob, 0)
		h.sms(alice, "SEND 0700000002 500")
		if txt := h.last(alice).Text; strings.Contains(txt, "fee") || h.pendingOf(alice).Fee != 0 {
			t.Fatalf("a free payment's code SMS %q", txt)
		}
	})
}
