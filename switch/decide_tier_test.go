package payswitch

import (
	"errors"
	"strings"
	"testing"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
)

// tierRules are testRules with the tier table of the shipped config.yaml (KES 5,000 /
// 1,000 / 2,000 at tier 0; 100,000 / 70,000 / 140,000 at tier 1; 500,000 / 150,000 /
// 300,000 at tier 2) and a key for id numbers.
func tierRules(t testing.TB) *rules {
	r := testRules(t)
	r.cfg.Tiers = [3]Tier{{MaxBalance: 500000, MaxPayment: 100000, DailyMax: 200000},
		{MaxBalance: 10000000, MaxPayment: 7000000, DailyMax: 14000000},
		{MaxBalance: 50000000, MaxPayment: 15000000, DailyMax: 30000000}}
	r.cfg.IDNumberKey = []byte("test id key")
	return r
}

func TestDecideAccountTier(t *testing.T) {
	r := tierRules(t)
	wallet := func() *ledger.Account {
		return &ledger.Account{ID: "ACW", Type: ledger.Wallet, Status: ledger.Active}
	}
	full := walletKYC{Tier: TierFull, Digest: idNumberDigest(r.cfg.IDNumberKey, "11111111")}
	cases := []struct {
		name    string
		acct    *ledger.Account
		kyc     walletKYC
		c       AccountTierChange
		err     error
		errHas  string
		tier    int
		digest  string // "keep": the one on file
		history []string
	}{
		{name: "raise to 2 with an id number", acct: wallet(), kyc: walletKYC{Tier: 1},
			c: AccountTierChange{Tier: 2, IDNumber: "12345678"}, tier: 2, digest: "12345678",
			history: []string{"tier 1>2", "id_number none>on file"}},
		{name: "2 without an id number", acct: wallet(), kyc: walletKYC{Tier: 1}, c: AccountTierChange{Tier: 2},
			err: ErrInvalid, errHas: "needs the holder's id number"},
		{name: "an id number with letters", acct: wallet(), kyc: walletKYC{Tier: 1},
			c: AccountTierChange{Tier: 2, IDNumber: "A1234567"}, err: ErrBadIDNumber, errHas: "without spaces or letters"},
		{name: "an id number with spaces", acct: wallet(), kyc: walletKYC{Tier: 1},
			c: AccountTierChange{Tier: 2, IDNumber: "1234 5678"}, err: ErrBadIDNumber},
		{name: "an id number too short", acct: wallet(), kyc: walletKYC{Tier: 1},
			c: AccountTierChange{Tier: 2, IDNumber: "1234"}, err: ErrBadIDNumber},
		{name: "an id number with tier 1", acct: wallet(), kyc: walletKYC{Tier: 0},
			c: AccountTierChange{Tier: 1, IDNumber: "12345678"}, err: ErrInvalid, errHas: "only with tier 2"},
		{name: "tier 3", acct: wallet(), c: AccountTierChange{Tier: 3}, err: ErrBadTier},
		{name: "tier -1", acct: wallet(), c: AccountTierChange{Tier: -1}, err: ErrBadTier},
		{name: "no reason", acct: wallet(), c: AccountTierChange{Tier: 0, Reason: " "}, err: ErrInvalid, errHas: "reason"},
		{name: "unknown account", c: AccountTierChange{Tier: 0}, err: ErrNotFound},
		{name: "a merchant has no tier", acct: &ledger.Account{ID: "ACM", Type: ledger.Merchant, Status: ledger.Active},
			c: AccountTierChange{Tier: 0}, err: ErrInvalid, errHas: "only wallets have tiers"},
		{name: "an agent has no tier", acct: &ledger.Account{ID: "ACA", Type: ledger.Agent, Status: ledger.Active},
			c: AccountTierChange{Tier: 2, IDNumber: "12345678"}, err: ErrInvalid, errHas: "only wallets"},
		{name: "closed", acct: &ledger.Account{ID: "ACW", Type: ledger.Wallet, Status: ledger.Closed},
			c: AccountTierChange{Tier: 0}, err: ErrConflict},
		{name: "the same tier", acct: wallet(), kyc: walletKYC{Tier: 1}, c: AccountTierChange{Tier: 1},
			err: ErrConflict, errHas: "already at tier 1"},
		{name: "lowering keeps the id number", acct: wallet(), kyc: full, c: AccountTierChange{Tier: 1},
			tier: 1, digest: "keep", history: []string{"tier 2>1"}},
		{name: "lowering may forget it", acct: wallet(), kyc: full, c: AccountTierChange{Tier: 0, ForgetIDNumber: true},
			tier: 0, digest: "", history: []string{"tier 2>0", "id_number on file>none"}},
		{name: "forgetting alone", acct: wallet(), kyc: walletKYC{Tier: 1, Digest: full.Digest},
			c: AccountTierChange{Tier: 1, ForgetIDNumber: true}, tier: 1, digest: "", history: []string{"id_number on file>none"}},
		{name: "tier 2 cannot forget", acct: wallet(), kyc: full, c: AccountTierChange{Tier: 2, IDNumber: "12345678", ForgetIDNumber: true},
			err: ErrInvalid},
		{name: "a new id number at tier 2 replaces the old", acct: wallet(), kyc: full,
			c: AccountTierChange{Tier: 2, IDNumber: "22222222"}, tier: 2, digest: "22222222",
			history: []string{"id_number on file>on file"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			c.Account, c.Actor = "ACW", "ops-anne"
			if c.Reason == "" {
				c.Reason = "documents seen"
			}
			d := r.accountTier(tierSnapshot{Account: tc.acct, KYC: tc.kyc}, c)
			if tc.err != nil {
				if !errors.Is(d.Err, tc.err) || !strings.Contains(d.Err.Error(), tc.errHas) || d.Tier != nil {
					t.Fatalf("err %v, change %+v; want %v with %q", d.Err, d.Tier, tc.err, tc.errHas)
				}
				if c.IDNumber != "" && strings.Contains(d.Err.Error(), c.IDNumber) {
					t.Fatalf("the refusal repeats the id number: %v", d.Err)
				}
				return
			}
			if d.Err != nil || d.Tier == nil {
				t.Fatalf("err %v, change %+v", d.Err, d.Tier)
			}
			ch := d.Tier
			want := tc.digest
			switch want {
			case "keep":
				want = tc.kyc.Digest
			case "":
			default:
				want = idNumberDigest(r.cfg.IDNumberKey, tc.digest)
			}
			if ch.Tier != tc.tier || ch.Digest != want || ch.Account != "ACW" {
				t.Fatalf("change %+v; want tier %d digest %q", ch, tc.tier, want)
			}
			var got []string
			for _, h := range ch.History {
				if h.Actor != "ops-anne" || h.Reason != "documents seen" || h.Account != "ACW" {
					t.Fatalf("history row %+v", h)
				}
				if strings.Contains(h.Old+h.New, c.IDNumber) && c.IDNumber != "" {
					t.Fatalf("history shows the id number: %+v", h)
				}
				got = append(got, h.Field+" "+h.Old+">"+h.New)
			}
			if strings.Join(got, "; ") != strings.Join(tc.history, "; ") {
				t.Fatalf("history %q; want %q", got, tc.history)
			}
		})
	}
	// Without a key no id number can be kept.
	r.cfg.IDNumberKey = nil
	if d := r.accountTier(tierSnapshot{Account: wallet()}, AccountTierChange{Account: "ACW", Tier: 2, IDNumber: "12345678",
		Reason: "x", Actor: "y"}); !errors.Is(d.Err, errNoIDKey) {
		t.Fatalf("no key: %v", d.Err)
	}
}

func TestTierLimits(t *testing.T) {
	r := tierRules(t)
	for _, tc := range []struct {
		tier int
		want Tier
	}{
		{0, Tier{MaxBalance: 500000, MaxPayment: 100000, DailyMax: 200000}},
		{1, Tier{MaxBalance: 10000000, MaxPayment: 7000000, DailyMax: 14000000}},
		{2, Tier{MaxBalance: 50000000, MaxPayment: 15000000, DailyMax: 30000000}},
		{-1, Tier{MaxPayment: 15000000, DailyMax: 30000000}}, // an agent: the global limits
	} {
		if got := r.tierLimits(tc.tier); got != tc.want {
			t.Errorf("tier %d: %+v; want %+v", tc.tier, got, tc.want)
		}
	}
	// A tier never passes the global limits; 0 leaves a limit to them.
	r.cfg.Tiers[1] = Tier{MaxPayment: 99000000, DailyMax: 0}
	if got := r.tierLimits(1); got != (Tier{MaxPayment: 15000000, DailyMax: 30000000}) {
		t.Errorf("tier above the global limits: %+v", got)
	}
	// No tier table: every tier is bound by the global limits alone, with no cap.
	if got := testRules(t).tierLimits(0); got != (Tier{MaxPayment: 15000000, DailyMax: 30000000}) {
		t.Errorf("no table: %+v", got)
	}
}

func TestOverCap(t *testing.T) {
	r := tierRules(t)
	room := func(typ ledger.AccountType, tier int, posted int64) payeeRoom {
		return payeeRoom{Account: ledger.Account{ID: "AC", Type: typ, Balance: ledger.Balance{Posted: posted}}, Tier: tier}
	}
	for _, tc := range []struct {
		name   string
		room   payeeRoom
		amount int64
		over   bool
	}{
		{"up to the cap", room(ledger.Wallet, 0, 400000), 100000, false},
		{"one past the cap", room(ledger.Wallet, 0, 400001), 100000, true},
		{"a basic wallet", room(ledger.Wallet, 1, 9000000), 1000001, true},
		{"a full wallet holds more", room(ledger.Wallet, 2, 9000000), 1000001, false},
		{"a merchant has no cap", room(ledger.Merchant, 0, 90000000), 100000, false},
		{"an agent has no cap", room(ledger.Agent, -1, 90000000), 100000, false},
	} {
		if over, _ := r.overCap(tc.room, tc.amount); over != tc.over {
			t.Errorf("%s: over %v", tc.name, over)
		}
	}
	if over, _ := testRules(t).overCap(room(ledger.Wallet, 0, 1<<40), 1); over {
		t.Error("no tier table caps a balance")
	}
}

// TestDecideRequestTierLimits: a payment's largest amount and the payer's day are its
// wallet's tier's; an agent pays within the global limits.
func TestDecideRequestTierLimits(t *testing.T) {
	r := tierRules(t)
	for _, tc := range []struct {
		name    string
		tier    int
		typ     ledger.AccountType
		amount  int64
		spent   int64
		problem Problem
		text    string
	}{
		{"tier 0 within its max payment", 0, ledger.Wallet, 100000, 0, ProblemNone, ""},
		{"tier 0 above its max payment", 0, ledger.Wallet, 100001, 0, ProblemAboveMax, "KES 1,000.00"},
		{"tier 0 past its day", 0, ledger.Wallet, 50000, 160000, ProblemDailyLimit, "KES 2,000.00 (KES 400.00 left"},
		{"tier 1 above its max payment", 1, ledger.Wallet, 7000001, 0, ProblemAboveMax, "KES 70,000.00"},
		{"tier 2 may pay more", 2, ledger.Wallet, 7000001, 0, ProblemNone, ""},
		{"an agent is bound by the global limits", 0, ledger.Agent, 7000001, 0, ProblemNone, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dr := drafted()
			dr.payerAcct.Type = tc.typ
			s := requestSnapshot{Now: decideNow, ReplyTo: "254700000001", Draft: dr, Tier: tc.tier, Spent: tc.spent, PayerStatus: ledger.Active,
				Request: Request{Channel: ChannelUSSD, Type: MerchantPayment, Payer: "254700000001", Merchant: "55501", Amount: tc.amount}}
			d := r.request(s)
			if tc.problem == ProblemNone {
				if d.Step != holdStep {
					t.Fatalf("step %v, outcome %+v; want the hold", d.Step, d.Outcome)
				}
				return
			}
			if d.Outcome.Problem != tc.problem || !strings.Contains(d.Outcome.Text, tc.text) {
				t.Fatalf("outcome %+v; want %s with %q", d.Outcome, tc.problem, tc.text)
			}
		})
	}
}

// TestDecideRequestedTierLimits: a merchant's request is checked against its payer's
// tier when the right code completes it.
func TestDecideRequestedTierLimits(t *testing.T) {
	r := tierRules(t)
	p := waitingPayment()
	p.State, p.Amount = StateRequested, 150000
	f := requestFunds{Payer: ledger.Account{ID: "ACPAYER", Type: ledger.Wallet, Status: ledger.Active,
		Balance: ledger.Balance{Available: 1000000}}, Payee: ledger.Account{Status: ledger.Active}, PayerTier: 0}
	d := r.completeRequest(p, ChannelSMS, nil, f, decideNow)
	if d.Outcome.Problem != ProblemAboveMax || d.Transfer != nil || !strings.Contains(d.Messages[0].Text, "largest payment of KES 1,000.00") {
		t.Fatalf("tier 0: %+v, messages %+v", d.Outcome, d.Messages)
	}
	f.PayerTier, f.Spent = 1, 13900000
	if d = r.completeRequest(p, ChannelSMS, nil, f, decideNow); d.Outcome.Problem != ProblemDailyLimit || d.Transfer != nil {
		t.Fatalf("tier 1 day: %+v", d.Outcome)
	}
	f.Spent = 0
	if d = r.completeRequest(p, ChannelSMS, nil, f, decideNow); d.Outcome.Problem != ProblemNone || d.Transfer == nil {
		t.Fatalf("tier 1: %+v", d.Outcome)
	}
}

// TestDecideConfirmBalanceCap: the right code for a transfer asks what its recipient can
// take, then fails it, releasing the hold, when the recipient's wallet would pass its
// cap; both sides are told.
func TestDecideConfirmBalanceCap(t *testing.T) {
	r := tierRules(t)
	transfer := func() *Payment {
		p := waitingPayment()
		p.Type, p.PayeeAccount, p.PayeeName, p.PayeeCode, p.PayeeMSISDN = TransferPayment, "ACBOB", "Bob", "", "254700000002"
		return p
	}
	s := confirmSnapshot{Now: decideNow, Channel: ChannelSMS, Number: "254700000001", ReplyTo: "254700000001",
		Waiting: transfer(), Check: otp.Result{OK: true}, Checked: true}
	if d := r.confirm(s); d.Step != roomStep {
		t.Fatalf("step %v; want roomStep", d.Step)
	}
	s.Room = &payeeRoom{Account: ledger.Account{ID: "ACBOB", Type: ledger.Wallet, Balance: ledger.Balance{Posted: 490000}}, Tier: 0}
	d := r.confirm(s)
	if d.Outcome.Problem != ProblemBalanceCap || d.Move != EvFail || !d.Release || d.Post || len(d.Messages) != 2 {
		t.Fatalf("over the cap: %+v", d)
	}
	if m := d.Messages[0]; m.To != "254700000001" || !strings.Contains(m.Text, "cannot receive KES 150.00") {
		t.Fatalf("payer told %+v", m)
	}
	if m := d.Messages[1]; m.To != "254700000002" || !strings.Contains(m.Text, "limit of KES 5,000.00") ||
		strings.Contains(m.Text, "4,900") {
		t.Fatalf("recipient told %+v", m)
	}
	s.Room.Account.Balance.Posted = 485000
	if d := r.confirm(s); d.Move != EvConfirm || !d.Post {
		t.Fatalf("up to the cap: %+v", d)
	}
	// A merchant payment, or no caps at all, reads nothing more.
	s.Room, s.Waiting = nil, waitingPayment()
	if d := r.confirm(s); d.Move != EvConfirm {
		t.Fatalf("merchant payment: %+v", d)
	}
	s.Waiting = transfer()
	if d := testRules(t).confirm(s); d.Move != EvConfirm {
		t.Fatalf("no caps: %+v", d)
	}
}

// TestDecideDepositBalanceCap: an operator's deposit that would take a wallet past its
// cap is refused with ErrBalanceCap, and nothing is written.
func TestDecideDepositBalanceCap(t *testing.T) {
	r := tierRules(t)
	a := ledger.Account{ID: "ACW", Type: ledger.Wallet, Status: ledger.Active, Balance: ledger.Balance{Posted: 400000}}
	s := bookingSnapshot{Now: decideNow, Reference: "r1", Key: "deposit:r1", Account: &a, NewID: "PAYDDDDDDD",
		Room: payeeRoom{Account: a, Tier: 0}}
	d := r.deposit(s, "ACW", 100001)
	if !errors.Is(d.Err, ErrBalanceCap) || d.Transfer != nil || !strings.Contains(d.Err.Error(), "maximum balance of KES 5,000.00") {
		t.Fatalf("over: %+v", d)
	}
	if d = r.deposit(s, "ACW", 100000); d.Err != nil || d.Transfer == nil {
		t.Fatalf("up to the cap: %+v", d)
	}
}
