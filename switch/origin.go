package payswitch

import "context"

// originKey keys the origin of a request in a context.
type originKey struct{}

// WithOrigin returns ctx carrying origin: who delivered what a number is said to have
// entered. The SMS channel leaves it empty: the carrier vouches for the sender of an MO.
// Callbacks (USSD and IVR gateways) set it to "<channel>:<source address>", because
// the number such a request names is only the gateway's word, and the engine limits
// what one origin can do to a number on that word alone (wrong codes above all).
func WithOrigin(ctx context.Context, origin string) context.Context {
	return context.WithValue(ctx, originKey{}, origin)
}

// OriginOf returns the origin WithOrigin put in ctx, or "" for none.
func OriginOf(ctx context.Context) string {
	s, _ := ctx.Value(originKey{}).(string)
	return s
}
