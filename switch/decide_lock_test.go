package payswitch

import (
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/ledger"
)

func TestDecideLock(t *testing.T) {
	r := testRules(t)
	r.cfg.IDNumberKey = []byte("0123456789abcdef")
	const owner, from, id = "254700000001", "254711000077", "12345678"
	digest := idNumberDigest(r.cfg.IDNumberKey, id)
	active := &ledger.Account{ID: "ACW", Type: ledger.Wallet, MSISDN: owner, Status: ledger.Active}
	frozen := &ledger.Account{ID: "ACW", Type: ledger.Wallet, MSISDN: owner, Status: ledger.Frozen}
	shop := &ledger.Account{ID: "ACM", Type: ledger.Merchant, MSISDN: owner, Status: ledger.Active}
	live := decideNow.Add(-time.Hour).UnixMicro()
	old := decideNow.Add(-lockWindow).UnixMicro()
	pending := &Payment{ID: "PAYAAAAAAA", State: StatePendingOTP, PayerAccount: "ACW", PayerMSISDN: owner, Amount: 500}
	requested := &Payment{ID: "PAYBBBBBBB", State: StateRequested, PayerAccount: "ACW", PayerMSISDN: owner, Amount: 700,
		PayeeAccount: "ACM", PayeeName: "Shop", PayeeCode: "55501"}
	base := lockSnapshot{Now: decideNow, Channel: ChannelSMS, From: from, Wallet: owner, ID: id, Account: active,
		Tier: TierFull, Digest: digest, Sender: lockCount{Subject: lockSenderSubject(from)},
		Target: lockCount{Subject: lockWalletSubject(owner)}, Senders: lockCount{Subject: lockSendersSubject}}
	cases := []struct {
		name   string
		edit   func(s *lockSnapshot)
		event  string // the history's entry: event and the start of its detail
		freeze bool
		ends   int    // payments ended
		counts string // subjects counted, with their counts
		text   string // the sender's answer starts so
		owner  string // the owner's SMS purpose, or ""
	}{
		{name: "match", event: "locked id number matched; wallet frozen", freeze: true,
			counts: "sender:254711000077=1 senders=1", text: "If the number and id", owner: "wallet_locked"},
		{name: "match ends what waits", edit: func(s *lockSnapshot) { s.Pending, s.Requested = pending, requested },
			event: "locked id number matched; wallet frozen", freeze: true, ends: 2,
			counts: "sender:254711000077=1 senders=1", text: "If the number and id", owner: "wallet_locked"},
		{name: "already frozen", edit: func(s *lockSnapshot) { s.Account = frozen },
			event: "locked id number matched; already frozen", counts: "sender:254711000077=1 senders=1", text: "If the number and id"},
		{name: "wrong id", edit: func(s *lockSnapshot) { s.ID = "87654321" }, event: "lock_refused wrong id number",
			counts: "sender:254711000077=1 senders=1 wallet:254700000001=1", text: "If the number and id"},
		{name: "third wrong id warns the owner", edit: func(s *lockSnapshot) {
			s.ID, s.Target.Start, s.Target.Count = "87654321", live, 2
		}, event: "lock_refused wrong id number", counts: "sender:254711000077=1 senders=1 wallet:254700000001=3",
			text: "If the number and id", owner: "lock_warning"},
		{name: "wallet limited: the right id is not checked", edit: func(s *lockSnapshot) { s.Target.Start, s.Target.Count = live, 3 },
			event: "lock_refused limited: too many wrong id numbers", counts: "sender:254711000077=1 senders=1", text: "If the number and id"},
		{name: "wallet window passed", edit: func(s *lockSnapshot) { s.Target.Start, s.Target.Count = old, 3 },
			event: "locked id number matched", freeze: true, counts: "sender:254711000077=1 senders=1", text: "If the number and id",
			owner: "wallet_locked"},
		{name: "no tier 2", edit: func(s *lockSnapshot) { s.Tier, s.Digest = TierBasic, "" },
			event: "lock_refused no id number recorded", counts: "sender:254711000077=1 senders=1", text: "If the number and id"},
		{name: "tier 2 without a key", edit: func(s *lockSnapshot) { s.Digest = "" },
			event: "lock_refused no id number recorded", counts: "sender:254711000077=1 senders=1", text: "If the number and id"},
		{name: "no wallet", edit: func(s *lockSnapshot) { s.Account = nil }, event: "lock_refused no such wallet",
			counts: "sender:254711000077=1 senders=1", text: "If the number and id"},
		{name: "a merchant is no wallet", edit: func(s *lockSnapshot) { s.Account = shop }, event: "lock_refused no such wallet",
			counts: "sender:254711000077=1 senders=1", text: "If the number and id"},
		{name: "known sender", edit: func(s *lockSnapshot) { s.Sender.Start, s.Sender.Count = live, 4 },
			event: "locked id number matched", freeze: true, counts: "sender:254711000077=5", text: "If the number and id",
			owner: "wallet_locked"},
		{name: "sender limited", edit: func(s *lockSnapshot) { s.Sender.Start, s.Sender.Count = live, 5 },
			event: "lock_refused limited: too many from the sender", text: "Too many LOCK requests"},
		{name: "too many new senders", edit: func(s *lockSnapshot) { s.Senders.Start, s.Senders.Count = live, lockNewSenders },
			event: "lock_refused limited: too many from the sender", text: "Too many LOCK requests"},
		{name: "not a number", edit: func(s *lockSnapshot) { s.Wallet = "" }, text: "Invalid phone number"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := base
			if tc.edit != nil {
				tc.edit(&s)
			}
			d := r.lockWallet(s)
			if (d.Change != nil) != tc.freeze || tc.freeze && (d.Change.New != "frozen" || d.Change.Actor != "lock") {
				t.Fatalf("change %+v, want freeze %v", d.Change, tc.freeze)
			}
			if len(d.Also) != tc.ends {
				t.Fatalf("%d payments ended, want %d", len(d.Also), tc.ends)
			}
			for _, also := range d.Also {
				if len(also.Messages) != 0 || also.Move != EvCancel && also.Move != EvDecline || also.Move == EvCancel && !also.Release {
					t.Errorf("ending %s: %+v", also.Payment.ID, also)
				}
			}
			var counts []string
			for _, c := range d.LockCounts {
				counts = append(counts, c.Subject+"="+string(rune('0'+c.Count)))
			}
			if got := strings.Join(counts, " "); got != tc.counts {
				t.Errorf("counts %q, want %q", got, tc.counts)
			}
			var event string
			if len(d.Auth) == 1 {
				event = d.Auth[0].Event + " " + d.Auth[0].Detail
				if d.Auth[0].MSISDN != owner || strings.Contains(d.Auth[0].Detail, id) || strings.Contains(d.Auth[0].Detail, from) {
					t.Errorf("history entry %+v", d.Auth[0])
				}
			}
			if !strings.HasPrefix(event, tc.event) || tc.event == "" && len(d.Auth) != 0 {
				t.Errorf("history %q, want %q...", event, tc.event)
			}
			var ownerPurpose, answer string
			for _, m := range d.Messages {
				switch m.To {
				case owner:
					ownerPurpose = m.Purpose
				case from:
					answer = m.Text
				}
			}
			if ownerPurpose != tc.owner || !strings.HasPrefix(answer, tc.text) {
				t.Errorf("owner told %q, sender %q; want %q, %q...", ownerPurpose, answer, tc.owner, tc.text)
			}
		})
	}
}
