package payswitch

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/payswitch/payswitch/texts"
)

// DefaultTexts are the words the switch says, by key. Placeholders in braces are filled
// in by Texts.Render; config's `messages` section overrides any of them. Channels that
// show screens (USSD, IVR) keep their own texts beside these.
var DefaultTexts = map[string]string{
	// HELP is two SMS of one part each: the commands (HELP), then codes and merchants'
	// requests (HELP 2). HELP <command> answers that command's usage_* text.
	"help": "{shortcode}: PAY <till> <amount>, BUY <till> <item> [qty], SEND <number> <amount>, " +
		"WITHDRAW <agent> <amt>, TOPUP, BAL, MINI, CANCEL, NO, STOP <till>. More: HELP 2",
	"help_more": "{shortcode}: reply our code, RESEND, CANCEL. NO refuses a request, " +
		"STOP <till> bars them, START <till> allows. RELEASE, DISPUTE <id>: held money. Lost phone: LOCK.",
	"otp": "{id}: pay {amount} to {payee}? Reply with code {code} within {minutes} min to confirm. " +
		"Never share this code with anyone.",
	"otp_resent": "{id}: new code {code} to pay {amount} to {payee}, valid {minutes} min. " +
		"Old codes no longer work. Never share it with anyone.",
	"code_sent":       "{id}: a new code was sent to you by SMS.",
	"receipt":         "{id} confirmed. {amount} paid to {payee}. New balance {balance}.",
	"receipt_topup":   "{id} confirmed. {amount} of {payee} is being sent. New balance {balance}.", // payee: "airtime for 2547****001"
	"payee_notice":    "{id}: you have received {amount} from {payer}. New balance {balance}.",
	"deposit_notice":  "{id}: {amount} deposited to your account. New balance {balance}.",
	"balance":         "Balance {balance}. Available {available}.",
	"mini_header":     "Last payments:",
	"mini_empty":      "You have no payments yet.",
	"cancelled":       "{id} cancelled. {amount} is available again. Balance {available}.",
	"expired":         "{id} expired: the code was not entered in time. {amount} is available again.",
	"failed_attempts": "{id} failed: too many wrong codes. {amount} is available again.",
	"wrong_code":      "Wrong code for {id}. {tries} tries left.",
	"wrong_code_last": "Wrong code for {id}. 1 try left.",
	"code_expired":    "The code for {id} has expired. {amount} is available again.",
	"no_pending":      "You have no payment waiting for a code.",
	"pending_exists":  "{id} ({amount} to {payee}) is waiting for your code. Reply with the code or CANCEL first.",
	"resend_limit":    "No more new codes for {id}. Reply CANCEL and start again.",
	"resend_too_soon": "Please wait {seconds} s before asking for another code for {id}.",
	"bad_code_format": "Codes have {digits} digits. Reply with the code from our message, or CANCEL.",
	"unknown_merchant": "There is no merchant {code}. Check the till number and try again. " +
		"Nothing was paid.",
	"unknown_recipient": "{number} has no account. Nothing was sent.",
	"self_payment":      "You cannot send money to yourself.",
	"bad_amount":        "Invalid amount. Use e.g. 150 or 150.50.",
	"amount_unclear": "Amount not clear. Write it as 15000 or 15,000, with cents after a dot: 15000.50. " +
		"Nothing was paid.",
	"spaced_pay": "Amount not clear: no spaces in amounts, write e.g. PAY 55501 15000. " +
		"A reference of 3 digits needs a letter, e.g. INV123. Nothing was paid.",
	"spaced_send":        "No spaces in numbers or amounts, please: write e.g. SEND 0712345678 15000. Nothing was sent.",
	"spaced_topup":       "No spaces in amounts or numbers, please: write e.g. TOPUP 1500 or TOPUP 1500 0712345678. Nothing was paid.",
	"bad_number":         "Invalid phone number. Use e.g. 0712345678.",
	"bad_reference":      "The reference is too long (40 characters at most). Nothing was paid.",
	"usage_pay":          "To pay a merchant: PAY <till> <amount> [reference], e.g. PAY 55501 150",
	"usage_send":         "To send money: SEND <number> <amount>, e.g. SEND 0712345678 500",
	"usage_topup":        "To buy airtime: TOPUP <amount> [number], e.g. TOPUP 50",
	"below_min":          "The smallest payment is {min}. Nothing was paid.",
	"above_max":          "The largest payment is {max}. Nothing was paid.",
	"daily_limit":        "This payment would pass your daily limit of {limit} ({left} left today). Nothing was paid.",
	"insufficient_funds": "Insufficient funds: you have {available} available. Nothing was paid.",
	"insufficient_funds_fee": "Insufficient funds: {amount} + fee {fee} is {total}; you have {available} available. " +
		"Nothing was paid.",
	"no_account":          "This number has no payswitch account. Visit an agent to open one.",
	"account_inactive":    "Your account is not active. Please contact customer care.",
	"payee_inactive":      "{payee} cannot receive payments right now. Nothing was paid.",
	"airtime_unavailable": "Airtime is not available for {number} right now. Nothing was paid.",
	"temporary_error":     "Sorry, we could not process that now. Nothing was paid. Please try again.",
	"reversal_payer":      "{id} reversed: {amount} returned to you. New balance {balance}.",
	"reversal_payee":      "{id} reversed: {amount} returned to {payer}. New balance {balance}.",
	"topup_done":          "{id}: {amount} of airtime credited to {number}.",
	"topup_failed":        "{id}: airtime for {number} failed ({reason}). {amount} returned. New balance {balance}.",

	// Merchants' requests to pay, products and STOP (contract section 10).
	"request": "{id}: {payee} requests {amount}. Reply {code} within {valid} to pay, NO to refuse. " +
		"Never share this code.",
	"request_for": "{id}: {payee} requests {amount} for {what}. Reply {code} within {valid} to pay, NO to refuse. " +
		"Never share this code.",
	"request_airtime": "{id}: buy {amount} of airtime for this number? Reply {code} within {valid} to pay, " +
		"NO to refuse. Never share this code.",
	// The USSD push of a request (no code: the code comes by SMS; the screen asks for it).
	"request_push":         "{payee} requests {amount}, ref {id}, valid {valid}.\n1. Pay\n2. Refuse",
	"request_for_push":     "{payee} requests {amount} for {what}, ref {id}, valid {valid}.\n1. Pay\n2. Refuse",
	"request_airtime_push": "Buy {amount} of airtime for this number? Ref {id}, valid {valid}.\n1. Pay\n2. Refuse",
	"otp_buy": "{id}: pay {amount} to {payee} for {items}? Reply with code {code} within {minutes} min to confirm. " +
		"Never share this code.",
	"receipt_items":           "{id} confirmed. {amount} paid to {payee} for {items}. New balance {balance}.",
	"wrong_code_both":         "Wrong code for {id} and {other}. Tries left: {tries} for {id}, {other_tries} for {other}.",
	"declined":                "{id} declined. Nothing was paid to {payee}.",
	"no_request":              "You have no request to pay waiting.",
	"cancel_request":          "You have no payment of your own waiting. To refuse {id} of {amount} from {payee}, reply NO.",
	"request_expired":         "{id}: the request of {payee} for {amount} expired. Nothing was paid.",
	"declined_airtime":        "{id} declined. No airtime was bought and nothing was paid.",
	"request_expired_airtime": "{id}: the offer of {amount} of airtime expired. Nothing was paid.",
	"request_failed_funds": "{id} failed: insufficient funds to pay {amount} to {payee} ({available} available). " +
		"Nothing was paid.",
	"request_failed_limit": "{id} failed: {amount} would pass your daily limit of {limit} ({left} left today). " +
		"Nothing was paid.",
	"request_failed_inactive": "{id} failed: your account is not active. Please contact customer care. Nothing was paid.",
	"request_failed_payee":    "{id} failed: {payee} cannot receive payments right now. Nothing was paid.",
	"request_failed_attempts": "{id} failed: too many wrong codes. Nothing was paid.",
	"request_locked_failed": "Too many wrong codes: {id} failed and nothing was paid. This number is locked until " +
		"{until}. Not you? Call customer care.",
	"unknown_product": "{payee} has no product {product} for sale. Nothing was paid.",
	"usage_buy":       "To buy a product: BUY <till> <product> [quantity], e.g. BUY 55501 12 2",
	"bad_quantity":    "Invalid quantity: use a whole number from 1 to 9999, e.g. BUY 55501 12 2. Nothing was paid.",
	"usage_stop":      "To refuse a merchant's requests to pay: STOP <till>, e.g. STOP 55501. START <till> allows them again.",
	"stopped":         "{payee} can no longer send you requests to pay. Reply START {code} to allow them again.",
	"started":         "{payee} can send you requests to pay again. Reply STOP {code} to refuse them.",
	"stop_limit":      "You refuse requests from {count} merchants, the most a number can. Reply START <till> for one first.",

	// Refunds (contract section 11): {amount} is what the refund gave back.
	"refund_payer": "{id}: {payee} refunded {amount} to you. New balance {balance}.",
	"refund_payee": "{id}: {amount} refunded to {payer}. New balance {balance}.",
	// Guaranteed payments (contract section 11): RELEASE and DISPUTE, and what they tell.
	"receipt_escrow": "{id}: {amount} to {payee} held until you reply RELEASE {id} or until {release}. " +
		"Wrong? DISPUTE {id}",
	"payee_escrow_notice":       "{id}: {payer} paid {amount}, held in escrow until the payer releases it or until {release}.",
	"escrow_released_payer":     "{id}: {amount} released to {payee}.",
	"escrow_released_payer_due": "{id}: {amount} released to {payee}: its release date passed.",
	"escrow_settled_payer":      "{id}: our staff settled it: {amount} released to {payee}.",
	"escrow_released_payee":     "{id}: {amount} from {payer} released to you. New balance {balance}.",
	"escrow_disputed_payer":     "{id} disputed. {amount} stays held until our staff settle it; we will tell you.",
	"escrow_disputed_payee":     "{id}: {payer} disputed the payment of {amount}. It stays held until our staff settle it.",
	"escrow_refunded_payer":     "{id}: our staff settled it: {amount} returned to you. New balance {balance}.",
	"escrow_refunded_payee":     "{id}: our staff settled it: {amount} held for you was returned to {payer}.",
	"usage_escrow": "To pay a merchant what is held for it: RELEASE <payment id>, e.g. RELEASE BCDFGHJKLM. " +
		"To dispute it: DISPUTE <payment id>.",
	"escrow_unknown":          "You have no payment {id} held in escrow. Nothing was changed.",
	"not_in_escrow":           "{id} is not held in escrow. Nothing was changed.",
	"escrow_already_released": "{id} was released to {payee} already. Nothing was changed.",
	"escrow_already_refunded": "{id} was returned to you already. Nothing was changed.",
	"escrow_already_disputed": "{id} is disputed already; our staff will settle it.",
	// Stores, tills and SALES (contract section 11).
	"store_closed":  "{payee} is closed and takes no payments. Nothing was paid.",
	"store_notice":  "{id}: {payee} received {amount} from {payer}.",
	"sales":         "Sales {day} {where}: {payments} payments, gross {gross}, refunds {refunds}, net {net}.",
	"sales_refused": "SALES answers only a merchant's or a store's registered phone.",

	// The tariff and cash-out at agents (contract section 14): a payment with a fee
	// says so in the "_fee" variant of its text (fees.go withFee); a free one keeps the
	// plain text.
	"otp_fee": "{id}: pay {amount} + fee {fee} to {payee}? Reply with code {code} within {minutes} min to confirm. " +
		"Never share this code.",
	"otp_buy_fee": "{id}: pay {amount} + fee {fee} to {payee} for {items}? Reply with code {code} within {minutes} min. " +
		"Never share it.",
	"otp_resent_fee": "{id}: new code {code} to pay {amount} + fee {fee} to {payee}, valid {minutes} min. " +
		"Old codes no longer work. Never share it.",
	"receipt_fee":       "{id} confirmed. {amount} paid to {payee}, fee {fee}. New balance {balance}.",
	"receipt_items_fee": "{id} confirmed. {amount} paid to {payee} for {items}, fee {fee}. New balance {balance}.",
	"request_fee": "{id}: {payee} requests {amount} + fee {fee}. Reply {code} within {valid} to pay, NO to refuse. " +
		"Never share it.",
	"request_for_fee": "{id}: {payee} requests {amount} + fee {fee} for {what}. Reply {code} within {valid} " +
		"to pay or NO. Never share it.",
	"reversal_payer_fee": "{id} reversed: {amount} and its fee {fee} returned to you. New balance {balance}.",
	"otp_withdraw": "{id}: withdraw {amount} cash at agent {payee}? Reply with code {code} within {minutes} min. " +
		"Never share this code.",
	"otp_withdraw_fee": "{id}: withdraw {amount} cash at agent {payee}, fee {fee}? Reply with code {code} within " +
		"{minutes} min. Never share this code.",
	"receipt_withdraw":     "{id} confirmed. Collect {amount} cash from agent {payee}. New balance {balance}.",
	"receipt_withdraw_fee": "{id} confirmed. Collect {amount} cash from agent {payee}, fee {fee}. New balance {balance}.",
	"agent_withdraw": "{id}: hand over {amount} in cash to customer {payer}. Your float was credited with it " +
		"and your commission. New float {balance}.",
	"not_agent":      "{number} is not an agent. Check the agent's number and try again. Nothing was paid.",
	"usage_withdraw": "To withdraw cash at an agent: WITHDRAW <agent number> <amount>, e.g. WITHDRAW 0712345678 500",

	// More texts that name a payment's fee (fees.go withFee): a guaranteed payment's
	// receipt (the fee went to the switch; only the amount is held), a request that
	// failed for want of amount + fee. The limits' failures name the amount only: the
	// limits count the amount, not the fee.
	"receipt_escrow_fee": "{id}: {amount} to {payee} held till RELEASE {id} or {release}; fee {fee}. " +
		"Wrong? DISPUTE {id}",
	"request_failed_funds_fee": "{id} failed: insufficient funds to pay {amount} + fee {fee} to {payee} " +
		"({available} available). Nothing was paid.",

	// KYC tiers (contract section 14): a request above the payer's tier's largest
	// payment, and a transfer that would take its recipient past its tier's balance cap.
	"request_failed_max": "{id} failed: {amount} is more than your largest payment of {max}. Nothing was paid.",
	"balance_cap_payer": "{id} failed: {payee} cannot receive {amount} now (their wallet's balance limit). " +
		"{amount} is available again.",
	"balance_cap_payee": "{id}: {payer} tried to send you {amount}, which would take your wallet past its " +
		"limit of {cap}. Nothing came in. An agent can raise it.",
}

// Texts renders the switch's messages.
type Texts struct {
	set *texts.Set
}

// NewTexts merges overrides into DefaultTexts. An override for an unknown key is an error,
// so that a typo in config does not silently keep the default.
func NewTexts(overrides map[string]string) (*Texts, error) {
	set, err := texts.New("messages", DefaultTexts, overrides)
	if err != nil {
		return nil, fmt.Errorf("payswitch: %w", err)
	}
	return &Texts{set: set}, nil
}

// Render fills a text's placeholders from vars ({name} -> vars["name"]).
func (x *Texts) Render(key string, vars map[string]string) string { return x.set.Render(key, vars) }

// RenderCode renders a text that carries a one-time code so that the code is the only run
// of exactly digits digits not part of a longer number: any other such run (a till number
// of the same length, say) is written in groups of three, as numbers are read aloud.
func (x *Texts) RenderCode(key string, vars map[string]string, code string, digits int) string {
	const mark = "\x00"
	v := make(map[string]string, len(vars)+1)
	for k, s := range vars {
		v[k] = s
	}
	v["code"] = mark
	out := defuseDigitRuns(x.Render(key, v), digits)
	return strings.Replace(out, mark, code, 1)
}

var digitRun = regexp.MustCompile(`[0-9]+`)

func defuseDigitRuns(s string, n int) string {
	return digitRun.ReplaceAllStringFunc(s, func(run string) string {
		if len(run) != n {
			return run
		}
		var b strings.Builder
		for i := 0; i < len(run); i++ {
			if i > 0 && i%3 == 0 {
				b.WriteByte(' ')
			}
			b.WriteByte(run[i])
		}
		return b.String()
	})
}
