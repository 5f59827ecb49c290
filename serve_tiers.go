package main

import "context"

// AccountTier is a wallet's KYC tier, for the console's account page (console.TierReader;
// contract section 14).
func (b *consoleBackend) AccountTier(ctx context.Context, id string) (int, error) {
	return b.a.engine.AccountTier(ctx, id)
}
