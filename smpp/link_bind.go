package smpp

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
)

// run is the bind loop.
func (l *Link) run(ctx context.Context) {
	defer close(l.runDone)
	// Handlers outlive a cancelled ctx so that an MO being persisted at shutdown is
	// finished and acknowledged rather than redelivered.
	hctx := context.WithoutCancel(ctx)
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	attempt := 0
	for {
		l.mu.Lock()
		l.setStateLocked(StateBinding)
		l.mu.Unlock()
		sessions, err := l.bindAll(ctx, hctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			attempt++
			l.log.Warn().Err(err).Int("attempt", attempt).Msg("smpp bind failed")
			l.mu.Lock()
			l.setStateLocked(StateDown)
			l.mu.Unlock()
			if !l.sleep(ctx, l.backoff(attempt)) {
				break
			}
			continue
		}
		attempt = 0
		l.mu.Lock()
		l.sessions = sessions
		l.tx = sessions[0]
		l.setStateLocked(StateBound)
		l.mu.Unlock()
		l.log.Info().Str("bind", l.cfg.Bind).Msg("smpp link bound")

		ended := make(chan error, len(sessions))
		for _, s := range sessions {
			go func() { <-s.done; ended <- s.reason() }()
		}
	bound:
		for {
			select {
			case err := <-ended:
				l.log.Warn().Err(err).Msg("smpp link down")
				break bound
			case now := <-sweep.C:
				if n := l.reasm.Sweep(now); n > 0 {
					l.log.Warn().Int("sets", n).Msg("smpp dropped incomplete concatenated MO")
				}
			case <-ctx.Done():
				break bound
			}
		}
		l.mu.Lock()
		l.tx, l.sessions = nil, nil
		if ctx.Err() == nil {
			l.setStateLocked(StateDown)
		}
		l.mu.Unlock()
		if ctx.Err() != nil {
			l.shutdown(sessions)
			break
		}
		for _, s := range sessions {
			s.fail(ErrConnLost)
		}
		if !l.sleep(ctx, l.backoff(1)) {
			break
		}
	}
	l.mu.Lock()
	l.closing = true
	l.setStateLocked(StateClosed)
	l.mu.Unlock()
	l.log.Info().Msg("smpp link closed")
}

// shutdown waits a little for the MO handlers in flight, so that their answers still
// reach the SMSC, then unbinds every session.
func (l *Link) shutdown(sessions []*session) {
	l.mu.Lock()
	l.closing = true
	l.mu.Unlock()
	idle := make(chan struct{})
	go func() { l.handlers.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-time.After(closeGrace):
		l.log.Warn().Msg("smpp closing with MO handlers still running; the SMSC will redeliver")
	}
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Go(s.unbind)
	}
	wg.Wait()
}

// bindAll opens the sessions of the bind mode; the first one carries submit_sm.
func (l *Link) bindAll(ctx, hctx context.Context) ([]*session, error) {
	onDeliver := func(s *session, p pdu.Body, esm uint8) { l.onDeliver(hctx, s, p, esm) }
	kinds := []string{"transceiver"}
	if l.cfg.Bind == BindTxRx {
		kinds = []string{"transmitter", "receiver"}
	}
	var sessions []*session
	for _, k := range kinds {
		s, err := dialSession(ctx, l.cfg, k, onDeliver)
		if err != nil {
			for _, s := range sessions {
				s.unbind()
			}
			return nil, err
		}
		sessions = append(sessions, s)
	}
	return sessions, nil
}

// backoff returns the wait before bind attempt n+1: exponential from minBackoff up to
// maxBackoff, with jitter over its upper half so that many links do not rebind in step.
func (l *Link) backoff(attempt int) time.Duration {
	d := l.minBackoff
	for i := 1; i < attempt && d < l.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, l.maxBackoff)
	half := d / 2
	return half + rand.N(half+1)
}

// sleep waits d or until ctx ends; it reports whether to go on.
func (l *Link) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
