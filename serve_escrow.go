package main

import "context"

// runEscrow releases guaranteed payments whose release date has passed (contract section
// 11) until ctx ends: at once on start, what became due while the switch was down, then
// as each comes due.
func (a *app) runEscrow(ctx context.Context) {
	if err := a.engine.RunEscrow(ctx); err != nil && ctx.Err() == nil {
		a.log.Error().Err(err).Msg("escrow release sweeper stopped")
	}
}
