package ivr

import (
	"fmt"

	"github.com/payswitch/payswitch/texts"
)

// DefaultTexts are the words the IVR speaks, by key. Placeholders in braces are filled
// in when a prompt is built, already in spoken form: {amount}, {available} and
// {balance} in words of the currency ("one hundred and fifty shillings"), {id} spelled
// letter by letter, {code} and {number} digit by digit, {payer} as "a number starting
// 2 5 4 7 and ending 0 0 1", {payee} as "Mama Mboga, merchant 5 5 5 0 1" or a name and
// masked number; {unit} is the plural of the currency's unit, {digits} the length of a
// code in words, {tries} the tries left ("two tries", "one try"). Config.Texts overrides
// any of them.
//
// Every sentence starts with a capital letter; so that a placeholder at the start of a
// sentence ("{amount} was paid") still does, what is said is capitalised once more
// when the answer is built (see sentences).
//
// The keys are fixed by the script, not by these texts: an override may reword "press 1
// to pay a merchant" but 1 still pays a merchant.
var DefaultTexts = map[string]string{
	// Inbound: the menu and what it asks for.
	"welcome": "Welcome to payswitch.",
	"menu": "Press 1 to pay a merchant, 2 to send money, 3 for your balance, " +
		"9 to lock the wallet of a lost phone.",
	"ask_merchant": "Enter the merchant code, then press the hash key.",
	"ask_number":   "Enter the phone number to send money to, then press the hash key.",
	"to_merchant":  "You are paying {payee}.",
	"to_number":    "You are sending money to {number}.",
	"ask_amount": "Enter the amount in whole {unit}, then press the hash key. " +
		"For example, for one hundred and fifty {unit}, press 1 5 0.",
	"code_sent": "A code was sent to you by SMS, to pay {amount} to {payee}, payment {id}.",
	"pending_exists": "You already have payment {id}, {amount} to {payee}, waiting for its code. " +
		"A code was sent to you by SMS.",
	"enter_code": "Enter the {digits} digit code from the SMS, then press the hash key.",
	"balance":    "Your available balance is {available}. Thank you for using payswitch. Goodbye.",

	// Results of the code.
	"success": "Payment {id} is complete. You paid {amount} to {payee}. Your new balance is {balance}. " +
		"Thank you for using payswitch. Goodbye.",
	"wrong_code": "That code is not right. You have {tries} left. " +
		"Enter the code again, then press the hash key.",
	"wrong_code_again":  "That code is not right. Enter the code again, then press the hash key.",
	"too_many_attempts": "Too many wrong codes. Payment {id} failed and nothing was paid. Goodbye.",
	"code_expired":      "The code for payment {id} has expired. Nothing was paid. Goodbye.",
	"locked_failed": "Too many wrong codes. Payment {id} failed and nothing was paid. " +
		"This number is locked until {until}. If you did not try these codes, call customer care. Goodbye.",
	"origin_limited": "Too many wrong codes came through this line. " +
		"To confirm payment {id}, reply to our SMS with the code. Goodbye.",
	"no_pending":      "There is no payment waiting for a code. Goodbye.",
	"state_completed": "Payment {id}, {amount} to {payee}, is already complete. Goodbye.",
	"state_ended":     "Payment {id} is no longer waiting for a code. Nothing more was paid. Goodbye.",

	// Wrong or missing keys: said before the prompt again.
	"invalid":      "Sorry, that is not a valid choice.",
	"no_input":     "Sorry, we did not get your answer.",
	"bad_merchant": "There is no merchant {code}.",
	"bad_number":   "That is not a valid phone number.",
	"bad_amount":   "That is not a valid amount.",
	"bad_code":     "Codes have {digits} digits.",
	"give_up":      "Sorry, we could not understand your answers. Nothing was paid. Please call again. Goodbye.",
	"give_up_code": "We did not get your code. Payment {id} is still waiting: to confirm it, " +
		"reply to our SMS with the code before it expires. Goodbye.",

	// Refusals of a payment request, by the engine's problem; "refused" for the others.
	"refused":                  "Sorry, we could not make this payment. Nothing was paid. Goodbye.",
	"refused_no_account":       "This number has no payswitch account. Please visit an agent to open one. Goodbye.",
	"refused_account_inactive": "Your account is not active. Please contact customer care. Goodbye.",
	"refused_insufficient_funds": "You do not have enough money for this payment: your available balance is " +
		"{available}. Nothing was paid. Goodbye.",
	"refused_below_min":         "That amount is below the smallest payment allowed. Nothing was paid. Goodbye.",
	"refused_above_max":         "That amount is above the largest payment allowed. Nothing was paid. Goodbye.",
	"refused_daily_limit":       "This payment would pass your daily limit. Nothing was paid. Goodbye.",
	"refused_unknown_merchant":  "There is no merchant {code}. Nothing was paid. Goodbye.",
	"refused_unknown_recipient": "The number {number} has no payswitch account. Nothing was sent. Goodbye.",
	"refused_self_payment":      "You cannot send money to yourself. Goodbye.",
	"refused_payee_inactive":    "Payments to {payee} cannot be made right now. Nothing was paid. Goodbye.",
	"refused_bad_number":        "That is not a valid phone number. Nothing was sent. Goodbye.",
	"temporary_error":           "Sorry, we could not do that now. Nothing was paid. Please try again later. Goodbye.",
	"temporary_error_code": "Sorry, we could not check your code now. Payment {id} is still waiting: " +
		"to confirm it, reply to our SMS with the code. Goodbye.",

	// The lost-phone lock (lostphone.go).
	"no_account_lock": "This number has no payswitch account; please visit an agent to open one. " +
		"To lock the wallet of a lost phone, press 9.",
	"ask_lock_wallet": "Enter the phone number of the wallet to lock, then press the hash key.",
	"ask_lock_id":     "Enter the wallet owner's id number, then press the hash key.",
	"bad_id_number":   "An id number has 5 to 20 digits.",
	"lock_received": "If the number and id number match our records, the wallet is now locked " +
		"and no payment can be made from it. To reactivate it, visit an agent or call customer care with your ID. Goodbye.",
	"lock_limited":         "Too many lock requests from this number. Please try again tomorrow or call customer care. Goodbye.",
	"temporary_error_lock": "Sorry, we could not do that now. Nothing was locked. Please try again later. Goodbye.",

	// Calls that cannot go on.
	"session_gone":  "Sorry, this call has timed out. Please call again. Goodbye.",
	"hidden_number": "Sorry, we could not recognise your phone number. Please call from your registered phone. Goodbye.",
	"goodbye":       "Thank you for using payswitch. Goodbye.",

	// A payment with a fee (the tariff, contract section 14) is said with these
	// variants of the texts above and below, which name it (fees.go).
	"code_sent_fee": "A code was sent to you by SMS, to pay {amount} to {payee}, with a fee of {fee}, payment {id}.",
	"pending_exists_fee": "You already have payment {id}, {amount} to {payee} with a fee of {fee}, " +
		"waiting for its code. A code was sent to you by SMS.",
	"success_fee": "Payment {id} is complete. You paid {amount} to {payee}, and a fee of {fee}. " +
		"Your new balance is {balance}. Thank you for using payswitch. Goodbye.",
	"payer_confirm_fee": "This is payswitch. You have a payment waiting: {amount} to {payee}, with a fee of {fee}, " +
		"payment {id}. A code was sent to you by SMS. To confirm it, key in the code.",
	"fallback_amount_fee": "The payment is {amount} to {payee}, with a fee of {fee}. To confirm it, key in the amount " +
		"in whole {unit}, without the fee and without any cents, then press the hash key.",

	// Outbound calls.
	"merchant_notice": "This is payswitch. You have received {amount} from {payer}, payment {id}.",
	"notice_repeat":   "Press 1 to hear this again.",
	"payer_confirm": "This is payswitch. You have a payment waiting: {amount} to {payee}, payment {id}. " +
		"A code was sent to you by SMS. To confirm it, key in the code.",

	// payer_confirm when no SMS reaches the phone: the payer keys the amount, never a
	// code (see fallback), and these texts have no {code} to say.
	"payer_fallback": "This is payswitch. We could not send you a code by SMS for payment {id}. " +
		"If you made this payment, you can confirm it on this call. If you did not, hang up and nothing will be paid.",
	"fallback_amount": "The payment is {amount} to {payee}. To confirm it, key in the amount in whole {unit}, " +
		"without any cents, then press the hash key.",
	"wrong_amount":     "That is not the amount of this payment.",
	"give_up_fallback": "Payment {id} was not confirmed. Nothing was paid. Goodbye.",
	"fallback_stale": "This call can no longer confirm payment {id}, because a newer code was made for it. " +
		"Nothing was paid. Goodbye.",
	"temporary_error_fallback": "Sorry, we could not confirm payment {id} now. Nothing was paid. Goodbye.",
	"call_unknown":             "This is payswitch. Sorry, we could not find what this call is about. Goodbye.",
}

// newTexts merges overrides into DefaultTexts (see texts.New).
func newTexts(overrides map[string]string) (*texts.Set, error) {
	set, err := texts.New("ivr.messages", DefaultTexts, overrides)
	if err != nil {
		return nil, fmt.Errorf("ivr: %w", err)
	}
	return set, nil
}
