package ussd

import (
	"fmt"
	"unicode/utf8"

	"github.com/payswitch/payswitch/texts"
)

// DefaultTexts are the words of the USSD screens, by key. Placeholders in braces are
// filled in when a screen is drawn; Config.Texts (config `ussd.messages`) overrides any
// of them. Results of payments (receipts, refusals, wrong codes) are the engine's own
// texts, shared with SMS.
//
// The option numbers are fixed by the menu, not by these texts: an override may reword
// "1. Send money" but 1 still sends money, 9 still asks for a new code, 0 still cancels
// or goes back (or, at a merchant's amount prompt, buys a product) and 98 still shows
// the next page.
var DefaultTexts = map[string]string{
	"title": "payswitch",
	"menu":  "1. Send money\n2. Pay merchant\n3. Buy airtime\n4. My account\n5. Withdraw cash",

	"ask_number":   "Send money to which number?",
	"ask_merchant": "Enter the merchant code (till number)",
	"ask_amount":   "Enter the amount in {currency}",
	// A merchant's amount prompt also leads to its products (buy.go).
	"ask_merchant_amount": "Enter the amount in {currency}, or 0 to buy a product",
	"ask_product":         "Enter the product code",
	"product_price":       "{product}: {price} each.",
	"ask_quantity":        "Enter the quantity (1-{max_quantity})",
	"buy_confirm":         "Buy {quantity} x {product} for {amount} from {payee}?",
	"buy_options":         "1. Yes\n2. No",
	"buy_declined":        "You did not buy it. Nothing was paid.",
	"airtime_menu":        "Buy airtime for:\n1. My number\n2. Another number\n0. Back",
	"ask_airtime_number":  "Buy airtime for which number?",
	"account_menu":        "My account\n1. Balance\n2. Last payments\n0. Back",

	"code_prompt": "{id}: pay {amount} to {payee}. Enter the code we sent you by SMS.",
	// The tariff and cash-out at agents (contract section 14).
	"code_prompt_fee":      "{id}: pay {amount} + fee {fee} to {payee}. Enter the code we sent you by SMS.",
	"code_prompt_withdraw": "{id}: withdraw {amount} cash at agent {payee}, fee {fee}. Enter the code we sent you by SMS.",
	"ask_agent":            "Withdraw cash at which agent? Enter the agent's number",
	"pending_exists":       "{id} ({amount} to {payee}) is waiting for its code. Enter the code we sent you by SMS.",
	"enter_code":           "Enter the code from our SMS.",
	"code_resent":          "We sent you a new code for {id} by SMS.",
	"resend_limit":         "No more new codes for {id}. Enter the last code or cancel.",
	"code_options":         "9. New code\n0. Cancel",

	"bad_choice":   "Invalid choice.",
	"bad_number":   "Invalid phone number. Use e.g. 0712345678.",
	"bad_merchant": "Merchant codes have 3 to 12 digits.",
	"bad_amount":   "Invalid amount. Use e.g. 150 or 150.50.",
	"bad_product":  "Product codes have 1 to 6 digits.",
	"bad_quantity": "Quantities are whole numbers from 1 to {max_quantity}.",
	"bad_code":     "Codes have {digits} digits.",
	"more":         "98. More",

	"no_pending":          "You have no payment waiting for a code.",
	"state_completed":     "{id} was already confirmed: {amount} paid to {payee}.",
	"state_topup_pending": "{id} was already confirmed: {amount} of airtime for {payee} is on its way.",
	"state_cancelled":     "{id} was cancelled. Nothing was paid.",
	"state_expired":       "{id} expired: the code was not entered in time. Nothing was paid.",
	"state_failed":        "{id} failed: too many wrong codes. Nothing was paid.",
	"state_reversed":      "{id} was reversed: {amount} returned.",
	"state_declined":      "{id} was declined. Nothing was paid.",

	"push_code":          "Enter the code we sent you by SMS.",
	"push_ended":         "This request has ended. Reply to our SMS with the code.",
	"push_refuse_by_sms": "To refuse this request, reply NO to our SMS.",

	"no_account":      "This number has no payswitch account. Visit an agent to open one.",
	"session_expired": "This session has ended. Please dial {service_code} again.",
	"unknown_service": "Unknown service code. Dial {service_code}.",
	"temporary_error": "Sorry, we could not process that now. Nothing was paid. Please try again.",
}

// maxMoreRunes bounds the "more" text so that a page always has room for content.
const maxMoreRunes = 40

// newTexts merges overrides into DefaultTexts (see texts.New) and checks that the "more"
// option leaves a page room for content.
func newTexts(overrides map[string]string) (*texts.Set, error) {
	set, err := texts.New("ussd.messages", DefaultTexts, overrides)
	if err != nil {
		return nil, fmt.Errorf("ussd: %w", err)
	}
	if n := utf8.RuneCountInString(set.Render("more", nil)); n > maxMoreRunes {
		return nil, fmt.Errorf("ussd: messages.more: %d characters, at most %d", n, maxMoreRunes)
	}
	return set, nil
}
