package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/smpp"
	"github.com/payswitch/payswitch/tools/smscsim"
)

// echoBindTimeout bounds the wait for the echo ESME to bind.
const echoBindTimeout = 10 * time.Second

// runEcho measures the ceiling of loadgen's path without the switch: the same
// simulator, and an in-process smpp.Link with the switch's link settings whose handler
// acknowledges each MO at once and submits its text back to the sender (on its own
// goroutine, as the switch's outbox sender does, so that the acknowledgement does not
// wait for the submit). o.concurrency phones each send an MO and wait for its echo,
// over and over, for o.echoDuration.
//
// Counted: MOs the ESME acknowledged (its handler returned nil, after which the link
// answers deliver_sm_resp) and MTs the SMSC accepted (Submit returned without error)
// between the start and the end of the phase.
func runEcho(ctx context.Context, o options, lg *logger) (echoResult, error) {
	password := randomHex(8)
	sim, err := smscsim.Start(smscsim.Config{
		Listen: "127.0.0.1:0", Accounts: map[string]string{"echo": password},
		QueueSize: simQueue, HistorySize: simHistory, Log: simLogger(lg), Window: o.window,
	})
	if err != nil {
		return echoResult{}, err
	}
	defer sim.Close()

	var mo, mt, failed atomic.Uint64
	var submits sync.WaitGroup
	slots := make(chan struct{}, 4*linkWindow) // bounds the submits in flight
	var link *smpp.Link
	h := smpp.HandlerFuncs{MO: func(_ context.Context, m smpp.MO) error {
		slots <- struct{}{}
		submits.Add(1)
		go func() {
			defer func() { <-slots; submits.Done() }()
			if _, err := link.Submit(context.Background(), smpp.MT{To: m.From, From: m.To, Text: m.Text}); err != nil {
				failed.Add(1)
				return
			}
			mt.Add(1)
		}()
		mo.Add(1)
		return nil
	}}
	link = smpp.NewLink(smpp.LinkConfig{Name: "echo", Address: sim.Addr(), SystemID: "echo", Password: password,
		Bind: smpp.BindTransceiver, TPS: linkTPS, Window: linkWindow}, h, zerolog.Nop(), nil)
	link.Start(context.WithoutCancel(ctx))
	defer func() {
		link.Close()
		submits.Wait()
	}()
	// The simulator sees the bind before the link has its session ready for Submit.
	if err := waitLinkBound(ctx, link); err != nil {
		return echoResult{}, err
	}

	inbox := make([]chan smscsim.MT, o.concurrency)
	byTo := make(map[string]chan smscsim.MT, o.concurrency)
	numbers := make([]string, o.concurrency)
	for i := range inbox {
		inbox[i] = make(chan smscsim.MT, phoneInbox)
		numbers[i] = fmt.Sprintf("2548%08d", i)
		byTo[numbers[i]] = inbox[i]
	}
	mts, unsubscribe := sim.Subscribe("")
	defer unsubscribe()
	go func() {
		for m := range mts {
			if c := byTo[m.To]; c != nil {
				select {
				case c <- m:
				default:
				}
			}
		}
	}()

	start := time.Now()
	stop, cancelStop := context.WithDeadline(ctx, start.Add(o.echoDuration))
	defer cancelStop()
	mo0, mt0 := mo.Load(), mt.Load()
	lat := make([][]time.Duration, o.concurrency)
	lost := make([]int, o.concurrency)
	var wg sync.WaitGroup
	for i := range o.concurrency {
		wg.Go(func() {
			for n := 0; stop.Err() == nil; n++ {
				text := fmt.Sprintf("ECHO %d %d", i, n)
				sent := time.Now()
				if err := sim.SendMO(stop, numbers[i], shortcode, text); err != nil {
					return
				}
				if !awaitEcho(stop, inbox[i], text, o.timeout) {
					if stop.Err() == nil {
						lost[i]++
					}
					continue
				}
				lat[i] = append(lat[i], time.Since(sent))
			}
		})
	}
	<-stop.Done()
	r := echoResult{mo: mo.Load() - mo0, mt: mt.Load() - mt0, elapsed: time.Since(start)}
	wg.Wait()
	nlost := 0
	for i := range lat {
		r.latencies = append(r.latencies, lat[i]...)
		nlost += lost[i]
	}
	sortDurations(r.latencies)
	if nlost > 0 || failed.Load() > 0 {
		lg.printf("echo: %d echoes not back within %s, %d submits failed", nlost, o.timeout, failed.Load())
	}
	return r, nil
}

// waitLinkBound waits until link can submit.
func waitLinkBound(ctx context.Context, link *smpp.Link) error {
	ctx, cancel := context.WithTimeout(ctx, echoBindTimeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for link.State() != smpp.StateBound {
		select {
		case <-ctx.Done():
			return fmt.Errorf("echo ESME not bound (%s): %w", link.State(), ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

// awaitEcho waits for the MT carrying text, skipping others (late echoes of earlier
// messages).
func awaitEcho(ctx context.Context, inbox <-chan smscsim.MT, text string, timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case m := <-inbox:
			if m.Text == text {
				return true
			}
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}
