package ussd

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/internal/switchtest"
	"github.com/payswitch/payswitch/ledger"
	payswitch "github.com/payswitch/payswitch/switch"
)

// flatTariff charges fee on withdrawals and pays the agent commission on each.
type flatTariff struct{ fee, commission int64 }

func (f flatTariff) Fee(typ string, _ int64) (int64, bool) {
	switch typ {
	case "withdrawal":
		return f.fee, true
	case "agent_commission":
		return f.commission, true
	}
	return 0, true
}

// TestWithdrawCash: 5 in the main menu asks for the agent's number, then the amount,
// and holds amount + fee with the code step; a number that is not an agent's is asked
// for again, nothing held; the code completes it at the agent.
func TestWithdrawCash(t *testing.T) {
	h := &harness{t: t, catalog: &catalog{m: map[string]payswitch.Product{}}}
	h.Rig = switchtest.New(t, switchtest.Options{Start: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC), Products: h.catalog,
		Config: func(c *payswitch.Config) { c.Tariff = flatTariff{fee: 2900, commission: 1400} }})
	var err error
	if h.menu, err = New(h.Engine, Config{ServiceCode: "*384#", Now: h.Clock.Now, Log: zerolog.Nop()}); err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewServer(h.menu.Handler())
	t.Cleanup(h.srv.Close)
	a := h.Wallet(alice, 200000)
	h.Wallet(bob, 0)
	ag, err := h.Engine.OpenAccount(context.Background(), payswitch.OpenAccount{Type: ledger.Agent, Name: "Kamau", MSISDN: "254700000777"})
	if err != nil {
		t.Fatal(err)
	}

	g, _ := h.dial("w1", alice)
	wantPrefix(t, g.send("5"), "CON Withdraw cash at which agent?")
	wantPrefix(t, g.send("0700000002"), "CON Enter the amount in KES")
	got := g.send("1000")
	wantPrefix(t, got, "CON 2547****002 is not an agent")
	wantContains(t, got, "Withdraw cash at which agent?")
	if bal := h.Balance(a.ID); bal.Held != 0 {
		t.Fatalf("held %d for a number that is not an agent", bal.Held)
	}
	wantPrefix(t, g.send("0700000777"), "CON Enter the amount in KES")
	got = g.send("1000")
	wantContains(t, got, "CON ", "withdraw KES 1,000.00 cash at agent Kamau 2547****777, fee KES 29.00", "Enter the code")
	if bal := h.Balance(a.ID); bal.Held != 102900 {
		t.Fatalf("held %d, want amount + fee", bal.Held)
	}
	got = g.send(h.code(alice))
	wantPrefix(t, got, "END ")
	wantContains(t, got, "Collect KES 1,000.00 cash from agent", "New balance KES 971.00")
	if bal := h.Balance(ag.ID); bal.Posted != 101400 {
		t.Fatalf("agent float %d, want amount + commission", bal.Posted)
	}
	if ms := h.Messages("254700000777", 10); len(ms) != 1 || ms[0].Purpose != "notice" {
		t.Fatalf("agent messages %+v", ms)
	}
	if p := h.paymentOfType(alice, payswitch.WithdrawalPayment); p.State != payswitch.StateCompleted || p.Fee != 2900 ||
		p.Channel != payswitch.ChannelUSSD {
		t.Fatalf("withdrawal %+v", p)
	}
}
