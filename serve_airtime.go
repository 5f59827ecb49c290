package main

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/airtime"
	"github.com/payswitch/payswitch/config"
	payswitch "github.com/payswitch/payswitch/switch"
)

// airtimeRouter builds the carriers' airtime clients, or nil when none sells airtime.
func airtimeRouter(cfg *config.Config, log zerolog.Logger, reg prometheus.Registerer) (*carrierAirtime, error) {
	var cs []airtime.CarrierConfig
	for _, c := range cfg.Airtime.Carriers {
		if c.URL != "" {
			cs = append(cs, airtime.CarrierConfig{Name: c.Name, Prefixes: c.Prefixes, URL: c.URL, Token: c.Token, Timeout: c.Timeout})
		}
	}
	if len(cs) == 0 {
		return nil, nil
	}
	r, err := airtime.NewRouter(cs, nil, log, reg)
	if err != nil {
		return nil, fmt.Errorf("config: airtime.carriers: %w", err)
	}
	return &carrierAirtime{r: r}, nil
}

// carrierAirtime adapts the carriers' clients to what the engine asks of them.
type carrierAirtime struct{ r *airtime.Router }

var _ payswitch.Airtime = (*carrierAirtime)(nil)

func (c *carrierAirtime) Carrier(msisdn string) (string, bool) {
	ca, ok := c.r.For(msisdn)
	if !ok {
		return "", false
	}
	return ca.Name(), true
}

func (c *carrierAirtime) Credit(ctx context.Context, carrier string, r payswitch.AirtimeRequest) payswitch.AirtimeResult {
	return c.call(ctx, carrier, r, (*airtime.Carrier).Credit)
}

func (c *carrierAirtime) Resolve(ctx context.Context, carrier string, r payswitch.AirtimeRequest) payswitch.AirtimeResult {
	return c.call(ctx, carrier, r, (*airtime.Carrier).Resolve)
}

func (c *carrierAirtime) call(ctx context.Context, carrier string, r payswitch.AirtimeRequest,
	f func(*airtime.Carrier, context.Context, airtime.Request) airtime.Result) payswitch.AirtimeResult {
	ca, ok := c.r.Get(carrier)
	if !ok {
		// The carrier left the config while a top-up was pending. It may have credited,
		// so this is no answer, never a failure that would return the money.
		return payswitch.AirtimeResult{Outcome: payswitch.AirtimeUnknown, Reason: "carrier " + carrier + " is not configured"}
	}
	res := f(ca, ctx, airtime.Request{Reference: r.Reference, MSISDN: r.MSISDN, Amount: r.Amount, Currency: r.Currency})
	return payswitch.AirtimeResult{Outcome: payswitch.AirtimeOutcome(res.Outcome), CarrierReference: res.CarrierReference, Reason: res.Reason}
}
