package smscsim

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/smpp"
)

// With a window of 4, four MOs reach an ESME that has not acknowledged any of them yet.
func TestWindowKeepsSeveralDeliveriesInFlight(t *testing.T) {
	sim, err := Start(Config{Listen: "127.0.0.1:0", Window: 4, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	var mu sync.Mutex
	inFlight, most := 0, 0
	release := make(chan struct{})
	all := make(chan struct{}, 8)
	h := smpp.HandlerFuncs{MO: func(ctx context.Context, m smpp.MO) error {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		if inFlight == 4 {
			close(release)
		}
		mu.Unlock()
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		mu.Lock()
		inFlight--
		mu.Unlock()
		all <- struct{}{}
		return nil
	}}
	l := smpp.NewLink(smpp.LinkConfig{Name: "w", Address: sim.Addr(), SystemID: "esme", Password: "x", Window: 8}, h, zerolog.Nop(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l.Start(ctx)
	defer l.Close()
	for i := range 4 {
		if err := sim.SendMO(ctx, fmt.Sprintf("25470000000%d", i), "22333", "BAL"); err != nil {
			t.Fatal(err)
		}
	}
	for range 4 {
		select {
		case <-all:
		case <-time.After(10 * time.Second):
			t.Fatal("MOs not delivered")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if most != 4 {
		t.Fatalf("at most %d deliveries in flight, want 4", most)
	}
}
