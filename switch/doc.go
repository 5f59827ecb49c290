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
// The folder is named switch after the product; Go reserves that word, so the package is
// payswitch.
package payswitch
