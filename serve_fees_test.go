package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// feesTariff is the tariff of the fee tests: transfers free up to KES 100, then KES 7
// (and more above KES 500); withdrawals KES 29 up to KES 2,500 with a KES 14 commission.
const feesTariff = `tariff:
  transfer: [{up_to: 10000, fee: 0}, {up_to: 50000, fee: 700}, {up_to: 15000000, fee: 2500}]
  withdrawal: [{up_to: 10000, fee: 1100}, {up_to: 250000, fee: 2900}, {up_to: 15000000, fee: 30900}]
  agent_commission: [{up_to: 10000, fee: 500}, {up_to: 250000, fee: 1400}, {up_to: 15000000, fee: 15400}]
`

// TestFeesAndWithdrawalThroughServe: a SEND with a fee and a WITHDRAW at an agent by SMS
// through a running switch: the code SMS and receipts name the fee, the agent is told to
// hand over the cash, the wallet, the agent and the fees account hold exactly what they
// should, the books balance, and their export verifies with the fee and commission
// transfers in it.
func TestFeesAndWithdrawalThroughServe(t *testing.T) {
	s := startSwitchWith(t, "5m", feesTariff)
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	b := s.open(map[string]string{"type": "wallet", "msisdn": bob, "name": "Bob"})
	const agentNo = "254700000777"
	ag := s.open(map[string]string{"type": "agent", "msisdn": agentNo, "name": "Kamau"})
	a, bp, agent := s.phone(alice), s.phone(bob), s.phone(agentNo)
	s.deposit(w.ID, 500000, "CASHIN-1")
	a.expect("deposited")

	// SEND of KES 300: fee KES 7.
	a.send("SEND 0700000002 300")
	a.send(codeIn(t, a.expect("pay KES 300.00 + fee KES 7.00 to Bob", "Never share")))
	sendID := paymentID(a.expect("confirmed", "KES 300.00 paid to", "fee KES 7.00", "New balance KES 4,693.00"))
	bp.expect(sendID, "received KES 300.00", "New balance KES 300.00")
	if p := s.payment(sendID); p["fee"] != 700.0 || p["amount"] != 30000.0 {
		t.Fatalf("payment %v", p)
	}

	// A withdrawal to a number that is not an agent: told so, nothing held.
	before := s.books(w.ID)
	a.send("WITHDRAW 0700000002 1000")
	a.expect("2547****002 is not an agent", "Nothing was paid")
	s.unchanged(before)

	// WITHDRAW KES 1,000 at the agent: fee KES 29, commission KES 14.
	a.send("WITHDRAW 0700000777 1000")
	a.send(codeIn(t, a.expect("withdraw KES 1,000.00 cash at agent Kamau 2547****777, fee KES 29.00")))
	wdID := paymentID(a.expect("confirmed", "Collect KES 1,000.00 cash from agent", "New balance KES 3,664.00"))
	agent.expect(wdID, "hand over KES 1,000.00 in cash to customer 2547****001", "New float KES 1,014.00")
	if p := s.payment(wdID); p["type"] != "withdrawal" || p["fee"] != 2900.0 || p["state"] != "completed" {
		t.Fatalf("withdrawal %v", p)
	}
	a.send("MINI")
	a.expect(wdID, "-1,000.00 fee 29.00", sendID, "-300.00 fee 7.00")

	bk := s.books(w.ID, b.ID, ag.ID, "fees:KES")
	for id, want := range map[string]int64{w.ID: 366400, b.ID: 30000, ag.ID: 101400, "fees:KES": 700 + 2900 - 1400} {
		if got := bk.Balances[id].Balance; got.Posted != want || got.Held != 0 {
			t.Errorf("%s holds %+v, want %d", id, got, want)
		}
	}
	if c := bk.Currencies["KES"]; c.Debits != c.Credits {
		t.Fatalf("trial balance %+v", bk)
	}

	// The books export and verify, the fee and commission transfers in them.
	s.stop()
	out := exportVerified(t, filepath.Join(s.dir, "payswitch.db"))
	journal, err := os.ReadFile(filepath.Join(out, "journal.csv"))
	if err != nil {
		t.Fatal(err)
	}
	// Each payment's rows: a debit and a credit per transfer (the amount and the fee;
	// the withdrawal's commission too).
	for id, transfers := range map[string]int{sendID: 2, wdID: 3} {
		if n := strings.Count(string(journal), ","+id+","); n != 2*transfers {
			t.Errorf("%d journal rows of %s, want %d:\n%s", n, id, 2*transfers, journal)
		}
	}
	accounts, err := os.ReadFile(filepath.Join(out, "accounts.csv"))
	if err != nil || !strings.Contains(string(accounts), "fees:KES") {
		t.Fatalf("accounts.csv without the fees account: %v\n%s", err, accounts)
	}
}
