package main

import (
	"context"
	"time"

	"github.com/payswitch/payswitch/api"
	"github.com/payswitch/payswitch/merchant"
	"github.com/payswitch/payswitch/sales"
	"github.com/payswitch/payswitch/webhook"
)

// merchants are the parts of contract section 10 beside the engine: the merchants'
// keys and catalogues (package merchant) and the delivery of their events (package
// webhook). The engine prices BUY and requests from the catalogue and queues events
// through the Hooks in its own transactions; the API serves keys, products and the
// webhook endpoint.
type merchants struct {
	keys    *merchant.Keys
	catalog *merchant.Catalog
	hooks   *webhook.Hooks
	// guarantees: which merchants' payments are guaranteed (contract section 11; serve_escrow.go).
	guarantees *merchant.Guarantees
	stores     *merchant.Stores // contract section 11 (serve_stores.go)
	sales      *sales.Reports
}

// startMerchants builds the merchants' parts over a.db. secret seals the merchants'
// webhook secrets (a key derived from it, as the outbox's is); maxPrice is the largest
// payment, so that no product costs more than can be paid.
func (a *app) startMerchants(secret []byte, now func() time.Time, maxPrice int64) error {
	opts := merchant.Options{Now: now, MaxPrice: maxPrice}
	a.merchants.keys = merchant.NewKeys(a.db, opts)
	a.merchants.catalog = merchant.NewCatalog(a.db, opts)
	a.merchants.guarantees = merchant.NewGuarantees(a.db, opts)
	a.startStores(opts)
	wc := a.cfg.Webhooks
	hooks, err := webhook.New(a.db, webhook.Config{Now: now, Timeout: wc.Timeout, RetryFor: wc.RetryFor,
		Workers: wc.Workers, MaxFailures: wc.MaxFailuresBeforePause, Pause: wc.Pause, SealKey: secret,
		// The switch's own listeners: no merchant may have the switch call them. Those
		// whose port is chosen at start-up are added once bound (forbidBound).
		Forbidden: []string{a.cfg.HTTP.Listen, a.cfg.USSD.Callbacks.Listen, a.cfg.IVR.Callbacks.Listen,
			a.cfg.SMPP.DemoSMSC.PhoneAPI},
		Log: a.log, Registry: a.registry})
	if err != nil {
		return err
	}
	hooks.SetNode(nodeName(a.cfg)) // its predecessor's leased events go out at once (PostgreSQL)
	a.merchants.hooks = hooks
	return nil
}

// forbidBound forbids the listeners as they were bound, with the ports chosen for them.
func (a *app) forbidBound() error {
	addrs := []string{a.httpAddr}
	for _, c := range a.callbacks {
		addrs = append(addrs, c.addr)
	}
	if a.sim != nil {
		addrs = append(addrs, a.sim.PhoneAddr())
	}
	return a.merchants.hooks.Forbid(addrs...)
}

// runHooks delivers merchants' events until ctx ends.
func (a *app) runHooks(ctx context.Context) {
	if err := a.merchants.hooks.Run(ctx); err != nil && ctx.Err() == nil {
		a.log.Error().Err(err).Msg("webhook deliveries stopped")
	}
}

// webhooksAPI is the Hooks as the API lists deliveries.
type webhooksAPI struct{ *webhook.Hooks }

var _ api.Webhooks = webhooksAPI{}

func (w webhooksAPI) Deliveries(ctx context.Context, merchantID string, limit int) ([]api.WebhookDelivery, error) {
	ds, err := w.Hooks.Deliveries(ctx, merchantID, limit)
	if err != nil {
		return nil, err
	}
	out := make([]api.WebhookDelivery, 0, len(ds))
	for _, d := range ds {
		out = append(out, api.WebhookDelivery{EventID: d.EventID, Type: d.EventType, State: d.EventState,
			Attempt: d.Attempt, Status: d.Status, Error: d.Error, At: d.At, NextAt: d.NextAt})
	}
	return out, nil
}
