package main

import (
	"context"
	"time"

	"github.com/payswitch/payswitch/console"
	"github.com/payswitch/payswitch/merchant"
	"github.com/payswitch/payswitch/sales"
	payswitch "github.com/payswitch/payswitch/switch"
)

// startStores builds contract section 11's stores and sales reports over a.db: the
// engine pays tills through the stores and answers SALES from the reports; the API
// serves both. A store's phone is normalised as the engine normalises every number.
func (a *app) startStores(opts merchant.Options) {
	cc := a.cfg.CountryCode
	a.merchants.stores = merchant.NewStores(a.db, opts, func(s string) (string, error) {
		return payswitch.NormalizeMSISDN(s, cc)
	})
	a.merchants.sales = sales.New(a.db.Reader(), payswitch.PaymentStores, a.cfg.Location())
}

// StoreSales lists a merchant's own code ("main") and its stores with their takings of
// the business day that contains at, for the console's account page.
func (b *consoleBackend) StoreSales(ctx context.Context, merchantID string, at time.Time) ([]console.StoreSales, error) {
	m := b.a.merchants
	stores, err := m.stores.List(ctx, merchantID)
	if err != nil {
		return nil, err
	}
	loc := b.a.cfg.Location()
	day := at.In(loc)
	from := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, loc)
	rows, err := m.sales.Report(ctx, sales.Query{Merchant: merchantID, From: from, To: from.AddDate(0, 0, 1), By: sales.ByDay})
	if err != nil {
		return nil, err
	}
	byStore := map[string]sales.Row{}
	for _, r := range rows {
		byStore[r.Store] = r
	}
	out := make([]console.StoreSales, 0, len(stores)+1)
	add := func(s console.StoreSales) {
		r := byStore[s.ID]
		s.Payments, s.Gross, s.Refunds, s.Net = r.Payments, r.Gross, r.Refunds, r.Net
		out = append(out, s)
	}
	add(console.StoreSales{ID: sales.MainStore, Name: "Merchant code", Status: merchant.StoreOpen})
	for _, st := range stores {
		add(console.StoreSales{ID: st.ID, Name: st.Name, Till: st.Till, Phone: st.MSISDN, Status: st.Status})
	}
	return out, nil
}
