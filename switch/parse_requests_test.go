package payswitch_test

import (
	"testing"

	. "github.com/payswitch/payswitch/switch"
)

func TestParseRequestCommands(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Command
	}{
		{"NO", Command{Kind: CmdDecline}},
		{" no ", Command{Kind: CmdDecline}},
		{"No thanks", Command{Kind: CmdHelp}},
		{"BUY 55501 12", Command{Kind: CmdBuy, Merchant: "55501", Product: "12", Quantity: 1}},
		{"buy  55501 12  3", Command{Kind: CmdBuy, Merchant: "55501", Product: "12", Quantity: 3}},
		{"BUY 55501 123456 9999", Command{Kind: CmdBuy, Merchant: "55501", Product: "123456", Quantity: 9999}},
		{"BUY 55501 12 0", Command{Kind: CmdBuy, Merchant: "55501", Product: "12", Quantity: 1, Problem: ProblemBadQuantity}},
		{"BUY 55501 12 10000", Command{Kind: CmdBuy, Merchant: "55501", Product: "12", Quantity: 1, Problem: ProblemBadQuantity}},
		{"BUY 55501 12 00002", Command{Kind: CmdBuy, Merchant: "55501", Product: "12", Quantity: 1, Problem: ProblemBadQuantity}},
		{"BUY 55501 12 2.5", Command{Kind: CmdBuy, Merchant: "55501", Product: "12", Quantity: 1, Problem: ProblemBadQuantity}},
		{"BUY 55501 12 -1", Command{Kind: CmdBuy, Merchant: "55501", Product: "12", Quantity: 1, Problem: ProblemBadQuantity}},
		{"BUY 55501 12 2 more", Command{Kind: CmdBuy, Quantity: 1, Problem: ProblemUsageBuy}},
		{"BUY 55501", Command{Kind: CmdBuy, Quantity: 1, Problem: ProblemUsageBuy}},
		{"BUY 55501 sugar", Command{Kind: CmdBuy, Quantity: 1, Problem: ProblemUsageBuy}},
		{"BUY 55501 1234567", Command{Kind: CmdBuy, Quantity: 1, Problem: ProblemUsageBuy}},
		{"BUY 12 12", Command{Kind: CmdBuy, Quantity: 1, Problem: ProblemUsageBuy}},
		{"STOP 55501", Command{Kind: CmdStop, Merchant: "55501"}},
		{"start 55501", Command{Kind: CmdStart, Merchant: "55501"}},
		{"STOP", Command{Kind: CmdStop, Problem: ProblemUsageStop}},
		{"STOP mama", Command{Kind: CmdStop, Problem: ProblemUsageStop}},
		{"START 55501 55502", Command{Kind: CmdStart, Problem: ProblemUsageStop}},
	} {
		if got := ParseCommand(c.in, 6); got != c.want {
			t.Errorf("ParseCommand(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
}
