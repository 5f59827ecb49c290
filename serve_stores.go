package main

import (
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
