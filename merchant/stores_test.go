package merchant_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/merchant"
	payswitch "github.com/payswitch/payswitch/switch"
)

func normalizeKE(s string) (string, error) { return payswitch.NormalizeMSISDN(s, "254") }

func testStoresCreateListClose(t *testing.T) {
	ctx := context.Background()
	db, opts, clk := openDB(t)
	s := merchant.NewStores(db, opts, normalizeKE)

	st, err := s.Create(ctx, "M1", "  Westlands  ", "55611", "0700 000 950")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(st.ID, "st_") || st.Name != "Westlands" || st.MSISDN != "254700000950" ||
		st.Status != merchant.StoreOpen || st.Merchant != "M1" {
		t.Fatalf("created %+v", st)
	}
	clk.Advance(time.Second)
	other, err := s.Create(ctx, "M1", "Eastleigh <b>", "55612", "")
	if err != nil || other.MSISDN != "" || other.Name != "Eastleigh <b>" {
		t.Fatalf("second store %+v, %v", other, err)
	}
	list, err := s.List(ctx, "M1")
	if err != nil || len(list) != 2 || list[0].ID != st.ID || list[1].ID != other.ID {
		t.Fatalf("list %+v, %v", list, err)
	}
	if l, err := s.List(ctx, "M2"); err != nil || len(l) != 0 || l == nil {
		t.Fatalf("another merchant's list %+v, %v", l, err)
	}

	till, err := s.Till(ctx, "55611")
	if err != nil || till.Store != st.ID || till.Merchant != "M1" || till.Name != "Westlands" ||
		till.MSISDN != "254700000950" || till.Closed {
		t.Fatalf("till %+v, %v", till, err)
	}
	if byPhone, err := s.TillByMSISDN(ctx, "254700000950"); err != nil || byPhone.Store != st.ID {
		t.Fatalf("by phone %+v, %v", byPhone, err)
	}
	if _, err := s.Till(ctx, "99999"); !errors.Is(err, payswitch.ErrUnknownTill) {
		t.Fatalf("unknown till: %v", err)
	}

	// Another merchant cannot close it; its merchant can, and the till stays taken.
	if _, err := s.SetStatus(ctx, "M2", st.ID, merchant.StoreClosed); !errors.Is(err, merchant.ErrNotFound) {
		t.Fatalf("another merchant's close: %v", err)
	}
	closed, err := s.SetStatus(ctx, "M1", st.ID, merchant.StoreClosed)
	if err != nil || closed.Status != merchant.StoreClosed {
		t.Fatalf("closed %+v, %v", closed, err)
	}
	if again, err := s.SetStatus(ctx, "M1", st.ID, merchant.StoreClosed); err != nil || again.Status != merchant.StoreClosed {
		t.Fatalf("closed again %+v, %v", again, err)
	}
	if _, err := s.SetStatus(ctx, "M1", st.ID, "gone"); !errors.Is(err, merchant.ErrInvalid) {
		t.Fatalf("bad status: %v", err)
	}
	if till, _ := s.Till(ctx, "55611"); !till.Closed {
		t.Fatalf("till of a closed store %+v", till)
	}
	var open bool
	if err := db.Write(ctx, func(tx storeTx) error {
		var err error
		open, err = s.StoreOpen(ctx, tx, st.ID)
		return err
	}); err != nil || open {
		t.Fatalf("StoreOpen of a closed store: %v, %v", open, err)
	}
	if _, err := s.Create(ctx, "M2", "Copycat", "55611", ""); !errors.Is(err, merchant.ErrTillTaken) {
		t.Fatalf("a closed store's till again: %v", err)
	}
}

func testStoresRefuseBadInput(t *testing.T) {
	ctx := context.Background()
	db, opts, _ := openDB(t)
	opts.MaxStores = 2
	s := merchant.NewStores(db, opts, normalizeKE)
	cases := []struct{ name, store, till, msisdn string }{
		{"no name", " ", "55611", ""},
		{"a name too long", strings.Repeat("x", 65), "55611", ""},
		{"a control character", "West\x00lands", "55611", ""},
		{"a till of letters", "Westlands", "55A11", ""},
		{"a till too short", "Westlands", "55", ""},
		{"not a phone number", "Westlands", "55611", "call me"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := s.Create(ctx, "M1", c.store, c.till, c.msisdn); !errors.Is(err, merchant.ErrInvalid) {
				t.Fatalf("err %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := s.Create(ctx, "M1", "A", "55611", "0700000950"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "M1", "B", "55612", "+254700000950"); !errors.Is(err, merchant.ErrTaken) {
		t.Fatalf("another store's phone: %v", err)
	}
	if _, err := s.Create(ctx, "M1", "B", "55612", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "M1", "C", "55613", ""); !errors.Is(err, merchant.ErrLimit) {
		t.Fatalf("a store past the cap: %v", err)
	}
	if l, _ := s.List(ctx, "M1"); len(l) != 2 {
		t.Fatalf("refusals changed the list: %+v", l)
	}
}

// A till is unique among tills and merchant codes, whichever is written second: the
// store's check refuses a code, and the database refuses a merchant's code that is a
// till even when nothing checked first.
func testTillUniqueAcrossCodes(t *testing.T) {
	ctx := context.Background()
	db, opts, _ := openDB(t)
	s := merchant.NewStores(db, opts, normalizeKE)
	l := ledger.New(db, nil)
	if _, err := l.CreateAccount(ctx, ledger.NewAccount{ID: "M1", Type: ledger.Merchant, Currency: "KES",
		Name: "Mama Mboga", Code: "55501"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "M1", "Westlands", "55501", ""); !errors.Is(err, merchant.ErrTillTaken) {
		t.Fatalf("a merchant's code as a till: %v", err)
	}
	if _, err := s.Create(ctx, "M1", "Westlands", "55611", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "M2", "Elsewhere", "55611", ""); !errors.Is(err, merchant.ErrTillTaken) {
		t.Fatalf("another store's till: %v", err)
	}
	_, err := l.CreateAccount(ctx, ledger.NewAccount{ID: "M2", Type: ledger.Merchant, Currency: "KES",
		Name: "Kiosk", Code: "55611"})
	if err == nil || !strings.Contains(err.Error(), "till_taken") {
		t.Fatalf("a till as a merchant's code: %v", err)
	}
	if _, err := l.Account(ctx, "M2"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("the refused merchant exists: %v", err)
	}
	// The database refuses a till that is a code even when written directly.
	err = db.Write(ctx, func(tx storeTx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO stores (id, merchant_id, name, till, msisdn, status, created_at, updated_at)
			VALUES ('st_x', 'M1', 'X', '55501', '', 'open', 1, 1)`)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "till_taken") {
		t.Fatalf("a direct insert of a code as a till: %v", err)
	}
}

func TestStoresCreateListClose(t *testing.T) { pgtest.Both(t, testStoresCreateListClose) }

func TestStoresRefuseBadInput(t *testing.T) { pgtest.Both(t, testStoresRefuseBadInput) }

func TestTillUniqueAcrossCodes(t *testing.T) { pgtest.Both(t, testTillUniqueAcrossCodes) }
