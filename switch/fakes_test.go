package payswitch_test

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/payswitch/payswitch/store"

	. "github.com/payswitch/payswitch/switch"
)

// eventLog is an EventSink that records what the engine queues and writes nothing (the
// real one, package webhook's, queues deliveries in the same transaction).
type eventLog struct {
	mu  sync.Mutex // guards got
	got []sentEvent
}

var _ EventSink = (*eventLog)(nil)

// sentEvent is one event as the engine handed it over, its data read back.
type sentEvent struct {
	Merchant, Type, Subject string
	Data                    PaymentView
	At                      time.Time
}

func (l *eventLog) Enqueue(_ context.Context, tx store.Tx, merchantID, eventType, subject string, data []byte, at time.Time) error {
	if tx == nil {
		panic("an event queued outside a transaction")
	}
	var v PaymentView
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, sentEvent{Merchant: merchantID, Type: eventType, Subject: subject, Data: v, At: at})
	return nil
}

// of are the events about payment id, in the order queued.
func (l *eventLog) of(id string) []sentEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []sentEvent
	for _, e := range l.got {
		if e.Subject == id {
			out = append(out, e)
		}
	}
	return out
}

// types are the types of the events about payment id, in order.
func (l *eventLog) types(id string) []string {
	var out []string
	for _, e := range l.of(id) {
		out = append(out, e.Type)
	}
	return out
}

// catalog is a ProductCatalog in memory: products by merchant account ID and code.
type catalog struct {
	mu sync.Mutex // guards m
	m  map[string]Product
}

var _ ProductCatalog = (*catalog)(nil)

func (c *catalog) add(merchantID string, p Product) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]Product{}
	}
	c.m[merchantID+"/"+p.Code] = p
}

func (c *catalog) retire(merchantID, code string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, merchantID+"/"+code)
}

func (c *catalog) Product(_ context.Context, merchantID, code string) (Product, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.m[merchantID+"/"+code]
	if !ok {
		return Product{}, ErrUnknownProduct
	}
	return p, nil
}
