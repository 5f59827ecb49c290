package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fakeBooks is the part of the operator API that checkBooks reads, from memory.
type fakeBooks struct {
	balanced bool
	accounts map[string]int64     // account ID -> posted
	held     map[string]int64     // account ID -> held
	payments map[string][]payment // msisdn -> payments, newest first
}

func (f *fakeBooks) handler(t *testing.T) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/ledger/trial-balance", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"balanced": f.balanced, "currencies": map[string]any{}})
	})
	mux.HandleFunc("GET /api/v1/accounts/{id}", func(w http.ResponseWriter, r *http.Request) {
		posted, ok := f.accounts[r.PathValue("id")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		held := f.held[r.PathValue("id")]
		json.NewEncoder(w).Encode(map[string]any{"id": r.PathValue("id"),
			"balance": map[string]int64{"posted": posted, "held": held, "available": posted - held}})
	})
	mux.HandleFunc("GET /api/v1/payments", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"payments": f.payments[r.URL.Query().Get("msisdn")]})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			t.Errorf("%s %s without the operator token", r.Method, r.URL)
		}
		mux.ServeHTTP(w, r)
	})
}

func TestCheckBooks(t *testing.T) {
	const funded = 100_000
	// The consistent story: phone 1 paid 1,500 to till 70000 and saw the receipt; phone
	// 2 paid nothing.
	setup := func() (*fakeBooks, []*phone, []merchant) {
		p1, p2 := newPhone("254710000000"), newPhone("254710000001")
		p1.walletID, p1.funded = "W1", funded
		p2.walletID, p2.funded = "W2", funded
		p1.payments = 1
		p1.known["PAYMENT001"] = attempt{amount: 1500, till: "70000"}
		p1.confirmed["PAYMENT001"] = 1
		books := &fakeBooks{
			balanced: true,
			accounts: map[string]int64{"W1": funded - 1500, "W2": funded, "M1": 1500},
			held:     map[string]int64{},
			payments: map[string][]payment{
				"254710000000": {
					{ID: "PAYMENT001", Type: "merchant_payment", State: "completed", Payer: "W1", Payee: "M1", Amount: 1500},
					{ID: "DEPOSIT001", Type: "deposit", State: "completed", Payer: "cash:KES", Payee: "W1", Amount: funded},
				},
			},
		}
		return books, []*phone{p1, p2}, []merchant{{code: "70000", id: "M1"}}
	}
	tests := []struct {
		name    string
		change  func(b *fakeBooks, ps []*phone)
		wantErr string // "" for no error
	}{
		{name: "books match", change: func(*fakeBooks, []*phone) {}},
		{
			name:    "unbalanced",
			change:  func(b *fakeBooks, _ []*phone) { b.balanced = false },
			wantErr: "trial balance not balanced",
		},
		{
			name:    "wallet debited twice",
			change:  func(b *fakeBooks, _ []*phone) { b.accounts["W1"] -= 1500 },
			wantErr: "254710000000: wallet posted 97000, want 98500",
		},
		{
			name: "completed in the books, no receipt on the phone",
			change: func(b *fakeBooks, ps []*phone) {
				b.payments["254710000001"] = []payment{{ID: "PAYMENT002", Type: "merchant_payment", State: "completed", Payer: "W2", Payee: "M1", Amount: 10}}
			},
			wantErr: "payment PAYMENT002 completed in the books but the phone saw no receipt",
		},
		{
			name: "receipt on the phone, not completed in the books",
			change: func(b *fakeBooks, _ []*phone) {
				b.payments["254710000000"][0].State = "cancelled"
			},
			wantErr: "payment PAYMENT001 confirmed to the phone but not completed in its list",
		},
		{
			name: "listed twice",
			change: func(b *fakeBooks, _ []*phone) {
				b.payments["254710000000"] = append(b.payments["254710000000"], b.payments["254710000000"][0])
			},
			wantErr: "payment PAYMENT001 listed twice",
		},
		{
			name:    "two receipts for one payment",
			change:  func(_ *fakeBooks, ps []*phone) { ps[0].confirmed["PAYMENT001"] = 2 },
			wantErr: "2 receipts for payment PAYMENT001",
		},
		{
			name:    "other amount in the books",
			change:  func(b *fakeBooks, _ []*phone) { b.payments["254710000000"][0].Amount = 1499 },
			wantErr: "payment PAYMENT001 is 1499 to M1 in the books, the phone was asked 1500 to till 70000",
		},
		{
			name:    "till short",
			change:  func(b *fakeBooks, _ []*phone) { b.accounts["M1"] = 0 },
			wantErr: "till 70000: posted 0, want 1500",
		},
		{
			name:    "funds left held",
			change:  func(b *fakeBooks, _ []*phone) { b.held["W2"] = 700 },
			wantErr: "254710000001: 700 held with no payment waiting for its code",
		},
		{
			name: "held for a payment still waiting",
			change: func(b *fakeBooks, _ []*phone) {
				b.held["W2"] = 700
				b.payments["254710000001"] = []payment{{ID: "PAYMENT003", Type: "merchant_payment", State: "pending_otp", Payer: "W2", Payee: "M1", Amount: 700}}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			books, phones, merchants := setup()
			tt.change(books, phones)
			srv := httptest.NewServer(books.handler(t))
			defer srv.Close()
			err := checkBooks(context.Background(), newClient(srv.URL, "tok"), phones, merchants, &logger{w: io.Discard})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("checkBooks: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("checkBooks passed; want an error with %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("checkBooks: %v\nwant an error with %q", err, tt.wantErr)
			}
		})
	}
}
