// Package ussd is the USSD channel: the menus a feature phone walks through after dialling
// the service code, over an aggregator's HTTP callback (POST /ussd, form fields sessionId,
// serviceCode, phoneNumber, networkCode, text; answers "CON ..." or "END ...") and over
// SMPP (deliver_sm with ussd_service_op).
//
// Both transports call Menu.Step, which keeps each session's place in the menu in memory:
// a small struct per session in a sharded map, expired by one sweeper after the
// configured idle timeout, and bounded per phone and in all (maxPerNumber, maxSessions):
// past either bound the oldest session is forgotten, never the new dial refused. On
// PostgreSQL (Config.DB) sessions live in the database instead, with the same limits,
// so that any node sharing it continues any dialogue (dbsessions.go). A dial
// from a number with no account ends at once with a screen that says so, and leaves no
// session. The payment itself lives in the engine: a session only
// remembers the ID of the payment it started, so a session that dies leaves nothing
// behind that the engine's own expiry does not already handle.
//
// Menu tree (inputs joined by '*' as gateways send them):
//
//	1*<msisdn>*<amount>          send money        -> code prompt
//	2*<merchant code>*<amount>   pay a merchant    -> code prompt
//	2*<merchant code>*0*<product>*<quantity>*1   buy a merchant's product -> code prompt
//	                             (after the quantity: "Buy 2 x Sugar 1kg for KES 300.00
//	                             from Mama Mboga (55501)? 1. Yes 2. No"; 2 ends)
//	3*1*<amount>                 airtime for me    -> code prompt
//	3*2*<msisdn>*<amount>        airtime for another number -> code prompt
//	4*1                          balance (END)
//	4*2                          last five payments (END)
//	code prompt: <code> confirms (END), 9 sends a new code, 0 cancels (END)
//
// A screen never exceeds MaxScreen characters with its "CON "/"END " prefix; longer
// content is cut into pages that end with "98. More".
//
// A merchant's request to pay may also be pushed to the payer's phone as a
// network-initiated USSD screen (push.go): the SMPP sender opens its session with
// OpenPush before it submits the screen, and the phone's answers come to HandleSMPP
// like any other: 1 asks for the code that came by SMS and confirms with it, 2 refuses
// (Decliner). Push sessions have a table and limits of their own, and take answers only
// from the number and over the link the screen went to.
//
// The package knows no transport library: HandleSMPP takes the fields of a deliver_sm
// and returns the text and whether it ends the session; the caller submits it.
package ussd
