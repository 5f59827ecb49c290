package webhook_test

import (
	payswitch "github.com/payswitch/payswitch/switch"
	"github.com/payswitch/payswitch/webhook"
)

// Hooks is the engine's EventSink; the package itself does not import the engine.
var _ payswitch.EventSink = (*webhook.Hooks)(nil)
