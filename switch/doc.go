// Package payswitch is the payment engine: the payment state machine, the rules every
// payment obeys (limits, one pending payment per number, one-time codes) and the SMS
// command language of the contract.
//
// The engine knows nothing of SMPP, USSD gateways, voice gateways or HTTP. A channel turns
// what arrives into a call on Engine (HandleSMS, Request, Confirm, Cancel, ...). The engine
// decides inside one store transaction: it moves the payment through its states, asks the
// ledger to hold, post or void funds, asks otp to issue or check a code, and writes every
// message it wants sent into the durable outbox, all committed together. Channels deliver
// the outbox afterwards, so a crash can lose neither money nor a message.
//
// Every write of the switch runs on the store's one writer goroutine, so the engine does
// there only what must be decided there. Before a request's transaction it resolves the
// accounts its numbers and till name from the reader pool (which account a number or a
// till names never changes), and makes the payment ID, the code, its HMAC and the code
// SMS; before a confirmation's, it digests the code for the payment waiting and renders
// the receipts. The transaction then reads, in one statement each, what can have changed
// (the pending payment, the lock, the daily total, the code's state), decides, and lets
// the ledger check both accounts' status and funds as they are now. Screens that only
// show (balance, mini statement) read from the reader pool.
//
// The folder is named switch after the product; Go reserves that word, so the package is
// payswitch.
package payswitch
