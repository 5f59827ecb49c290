package api

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/merchant"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
)

// FuzzAPIBodies posts arbitrary bodies to every write endpoint of a real switch: each
// answer is JSON with a 2xx or 4xx status, never a 5xx or a panic, and the books stay
// balanced whatever got through.
func FuzzAPIBodies(f *testing.F) {
	db, err := store.Open(filepath.Join(f.TempDir(), "fuzz.db"), store.Options{Synchronous: "OFF"},
		ledger.Schema, otp.Schema, outbox.Schema, payswitch.Schema, merchant.Schema)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	secret := []byte("0123456789abcdef0123456789abcdef")
	iss, _ := otp.NewIssuer(secret, otp.Config{})
	ob, _ := outbox.NewSealed(db, nil, secret)
	l := ledger.New(db, nil)
	e, err := payswitch.New(payswitch.Config{Currency: "KES", Shortcode: "22333", CountryCode: "254"},
		payswitch.Deps{DB: db, Ledger: l, OTP: iss, Outbox: ob, Log: zerolog.Nop()})
	if err != nil {
		f.Fatal(err)
	}
	w, err := e.OpenAccount(context.Background(), payswitch.OpenAccount{Type: ledger.Wallet, Name: "A", MSISDN: "254700000001"})
	if err != nil {
		f.Fatal(err)
	}
	m, err := e.OpenAccount(context.Background(), payswitch.OpenAccount{Type: ledger.Merchant, Name: "M", Code: "55501"})
	if err != nil {
		f.Fatal(err)
	}
	srv, err := New(e, Config{Tokens: []Token{{Name: "ops", Token: "t", Role: Operator}}, Log: zerolog.Nop(),
		Keys: merchant.NewKeys(db, merchant.Options{}), Catalog: merchant.NewCatalog(db, merchant.Options{})})
	if err != nil {
		f.Fatal(err)
	}
	paths := []string{"/api/v1/accounts", "/api/v1/deposits", "/api/v1/airtime/topups", "/api/v1/payments/AAAAAAAAAA/reverse",
		"/api/v1/merchants/" + m.ID + "/keys", "/api/v1/merchants/" + m.ID + "/products"}
	f.Add(uint8(0), []byte(`{"type":"wallet","msisdn":"254700000002","name":"B"}`))
	f.Add(uint8(1), []byte(`{"account":"`+w.ID+`","amount":100,"reference":"R1"}`))
	f.Add(uint8(1), []byte(`{"account":"`+w.ID+`","amount":-5,"reference":"R2"}`))
	f.Add(uint8(1), []byte(`{"account":"`+w.ID+`","amount":1e30,"reference":"R3"}`))
	f.Add(uint8(2), []byte(`{"from":"x","msisdn":"1","amount":1,"reference":"T"}`))
	f.Add(uint8(3), []byte(`{"reason":"r","reference":"x"}`))
	f.Add(uint8(0), []byte("\xff\xfe{"))
	f.Add(uint8(4), []byte(`{"name":"web-shop"}`))
	f.Add(uint8(5), []byte(`{"code":"12","name":"Sugar <1kg>","price":15000}`))
	f.Add(uint8(5), []byte(`{"code":"1234567","name":"","price":-1}`))
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		req := httptest.NewRequest(http.MethodPost, paths[int(which)%len(paths)], bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer t")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code >= 500 || rec.Code < 200 {
			t.Fatalf("%s %q: status %d %s", req.URL.Path, body, rec.Code, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("content type %q", ct)
		}
		tb, err := l.TrialBalance(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for c, x := range tb {
			if x.Debits != x.Credits {
				t.Fatalf("%s unbalanced: %+v", c, x)
			}
		}
	})
}
