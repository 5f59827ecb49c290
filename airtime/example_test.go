package airtime_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/payswitch/payswitch/airtime"
	"github.com/rs/zerolog"
)

func ExampleRouter() {
	// A carrier that credits everything.
	carrier := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"status": "success", "carrier_reference": "CR-1"}`)
	}))
	defer carrier.Close()

	router, err := airtime.NewRouter([]airtime.CarrierConfig{
		{Name: "carrier-a", Prefixes: []string{"2547"}, URL: carrier.URL + "/topup", Token: "t0ken"},
		{Name: "carrier-b", Prefixes: []string{"2541"}}, // sells no airtime
	}, nil, zerolog.Nop(), nil)
	if err != nil {
		panic(err)
	}
	if _, ok := router.For("254110000001"); !ok {
		fmt.Println("no airtime for 2541…")
	}
	c, ok := router.For("254700000001")
	if !ok {
		panic("no carrier")
	}
	res := c.Credit(context.Background(), airtime.Request{
		Reference: "PAY0000001", MSISDN: "254700000001", Amount: 5000, Currency: "KES"})
	// On airtime.Unknown the engine keeps the payment pending and later calls c.Resolve.
	fmt.Println(c.Name(), res.Outcome, res.CarrierReference)
	// Output:
	// no airtime for 2541…
	// carrier-a success CR-1
}
