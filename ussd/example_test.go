package ussd_test

import (
	"context"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/smpp"
	payswitch "github.com/payswitch/payswitch/switch"
	"github.com/payswitch/payswitch/ussd"
)

// The gateway callback is one handler; serve mounts it on the API server with
// (*api.Server).Handle("POST /ussd", menu.Handler()), which adds the body limit and the
// latency metric but asks no bearer token.
func ExampleMenu_Handler() {
	var engine *payswitch.Engine // the running engine
	menu, err := ussd.New(engine, ussd.Config{ServiceCode: "*384#", Log: zerolog.Nop()})
	if err != nil {
		panic(err)
	}
	go menu.Run(context.Background()) // sweeps idle sessions
	mux := http.NewServeMux()
	mux.Handle("POST /ussd", menu.Handler())
}

// USSD over SMPP: the link's MO handler passes a deliver_sm that carried
// ussd_service_op to HandleSMPP and submits the answer on the same link, with the
// operation that continues or ends the session and the same its_session_info.
func ExampleMenu_HandleSMPP() {
	var menu *ussd.Menu
	var link *smpp.Link // the link the MO came in on
	handler := smpp.HandlerFuncs{MO: func(ctx context.Context, m smpp.MO) error {
		if m.USSD == nil {
			return nil // an SMS: the engine's HandleSMS
		}
		reply, end, _ := menu.HandleSMPP(ctx, m.Link, m.From, m.USSD.ServiceOp, m.USSD.SessionInfo, m.Text)
		if reply == "" {
			return nil
		}
		_, err := link.Submit(ctx, smpp.MT{To: m.From, From: m.To, Text: reply,
			USSD: &smpp.USSDInfo{ServiceOp: ussd.ReplyOp(end), SessionInfo: m.USSD.SessionInfo}})
		_ = err // log it; never ask the SMSC to redeliver a USSD input
		return nil
	}}
	_ = handler
}
