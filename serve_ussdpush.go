package main

import (
	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/config"
	"github.com/payswitch/payswitch/smpp"
	"github.com/payswitch/payswitch/ussd"
)

// wireUSSDPush lets sender push merchants' requests to pay (contract section 10) as
// network-initiated USSD screens over the links with smpp.links[].ussd_push (the
// links' smpp.LinkConfig.USSDPush), with menu opening each push's session before the
// screen goes out. The phone's answers come back over the link like any USSD over SMPP
// and reach the menus through moHandler.handleUSSD, which names the link they came
// over: a push session takes answers only over the link its screen went out on.
func wireUSSDPush(sender *smpp.Sender, menu *ussd.Menu, links []config.Link, log zerolog.Logger) {
	sender.SetPush(menu)
	var pushing []string
	for _, l := range links {
		if l.USSDPush {
			pushing = append(pushing, l.Name)
		}
	}
	if len(pushing) > 0 {
		log.Info().Strs("links", pushing).Msg("requests to pay are also pushed to phones as USSD screens over these links")
	}
}

// anyUSSDPush reports whether some link pushes requests as USSD: the engine then queues
// a push beside each request's SMS (the sender skips the numbers whose link does not).
func anyUSSDPush(links []config.Link) bool {
	for _, l := range links {
		if l.USSDPush {
			return true
		}
	}
	return false
}
