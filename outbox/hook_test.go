package outbox

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/store"
)

// hookLog is a ReceiptFunc that records what it was told, and when its after-effects ran.
type hookLog struct {
	seen   []Receipted // every run, a redo's included
	after  []Receipted // after-effects run (once each per durable call)
	failOn string      // a status whose receipt the hook refuses
}

func (h *hookLog) hook(_ context.Context, tx store.Tx, r Receipted) (func(), error) {
	h.seen = append(h.seen, r)
	if r.Status == h.failOn {
		return nil, errors.New("owner refused")
	}
	return func() { h.after = append(h.after, r) }, nil
}

// The caller hears of every receipt applied to its message, in the receipt's
// transaction, through the function it passed: at ReceiptThen for a known part, and at
// MarkSentThen for a receipt that came before it (an SMSC can answer a deliver_sm before
// the submit_sm_resp is recorded), marked Early.
func TestReceiptHookSeesReceiptsBeforeAndAfterMarkSent(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		for _, tc := range []struct {
			name      string
			early     bool // the receipt comes before MarkSent
			status    string
			wantState string
		}{
			{"after MarkSent, delivered", false, "DELIVRD", StateDelivered},
			{"after MarkSent, undeliverable", false, "UNDELIV", StateUndeliverable},
			{"after MarkSent, en route", false, "ENROUTE", StateSent},
			{"before MarkSent, delivered", true, "DELIVRD", StateDelivered},
			{"before MarkSent, undeliverable", true, "UNDELIV", StateUndeliverable},
			{"before MarkSent, en route", true, "ENROUTE", StateSent},
		} {
			t.Run(tc.name, func(t *testing.T) {
				db, c := mustOpen(t), newClock()
				o := New(db, c.Now)
				h := &hookLog{}
				m := sms("254700000001", "Your code is 123456")
				m.RequestReceipt, m.PaymentID, m.Purpose = true, "PAYAAAAAAA", "otp"
				id := put(t, db, Enqueue, m)[0]
				claim(t, o, 1, time.Minute)
				if tc.early {
					if _, ok, err := o.ReceiptThen(ctx, "carrier-a", "abc", tc.status, h.hook); ok || err != nil {
						t.Fatalf("early receipt: ok %v, err %v", ok, err)
					}
					if len(h.seen) != 0 {
						t.Fatalf("hook ran for a receipt whose message is not known yet: %+v", h.seen)
					}
				}
				if err := o.MarkSentThen(ctx, askedReceipts(id), "carrier-a", []string{"abc"}, h.hook); err != nil {
					t.Fatal(err)
				}
				if !tc.early {
					if _, ok, err := o.ReceiptThen(ctx, "carrier-a", "abc", tc.status, h.hook); !ok || err != nil {
						t.Fatalf("receipt: ok %v, err %v", ok, err)
					}
				}
				want := Receipted{ID: id, Kind: KindSMS, To: "254700000001", PaymentID: "PAYAAAAAAA", Purpose: "otp",
					State: tc.wantState, Status: tc.status, Early: tc.early}
				if len(h.after) != 1 || h.after[0] != want {
					t.Errorf("after-effects ran for %+v, want once for %+v", h.after, want)
				}
				if got := get(t, o, id).State; got != tc.wantState {
					t.Errorf("message is %s, want %s", got, tc.wantState)
				}
			})
		}
	})
}

// A ReceiptFunc that fails undoes what it was told of: the MarkSent that applied an early
// receipt fails whole, and the receipt still waits for the next MarkSent.
func TestReceiptHookErrorUndoesTheMarkSent(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, c := mustOpen(t), newClock()
		o := New(db, c.Now)
		h := &hookLog{failOn: "UNDELIV"}
		m := sms("254700000001", "hi")
		m.RequestReceipt = true
		id := put(t, db, Enqueue, m)[0]
		claim(t, o, 1, time.Minute)
		if _, _, err := o.ReceiptThen(ctx, "carrier-a", "abc", "UNDELIV", h.hook); err != nil {
			t.Fatal(err)
		}
		if err := o.MarkSentThen(ctx, askedReceipts(id), "carrier-a", []string{"abc"}, h.hook); err == nil {
			t.Fatal("MarkSent succeeded though the hook refused")
		}
		if got := get(t, o, id); got.State != StateSending || len(got.MessageIDs) != 0 {
			t.Fatalf("after a failed MarkSent the message is %s with IDs %v, want sending without", got.State, got.MessageIDs)
		}
		if len(h.after) != 0 {
			t.Fatalf("after-effects of an undone MarkSent ran: %+v", h.after)
		}
		h.failOn = ""
		if err := o.MarkSentThen(ctx, askedReceipts(id), "carrier-a", []string{"abc"}, h.hook); err != nil {
			t.Fatal(err)
		}
		if got := get(t, o, id).State; got != StateUndeliverable || len(h.after) != 1 {
			t.Fatalf("second MarkSent: message %s, after-effects %+v; want undeliverable, one", got, h.after)
		}
	})
}
