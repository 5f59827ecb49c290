package payswitch

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// CommandKind names what an SMS asks for.
type CommandKind string

// The SMS commands of the contract.
const (
	CmdHelp    CommandKind = "help"
	CmdPay     CommandKind = "pay"
	CmdSend    CommandKind = "send"
	CmdTopup   CommandKind = "topup"
	CmdConfirm CommandKind = "confirm"
	CmdResend  CommandKind = "resend"
	CmdCancel  CommandKind = "cancel"
	CmdBalance CommandKind = "balance"
	CmdMini    CommandKind = "mini"
	CmdDecline CommandKind = "decline" // NO: refuse the merchant's request to pay waiting
	CmdBuy     CommandKind = "buy"     // BUY <merchant code> <product code> [quantity]
	CmdStop    CommandKind = "stop"    // STOP <merchant code>: refuse that merchant's requests
	CmdStart   CommandKind = "start"   // START <merchant code>: take them again
	// Guaranteed payments (contract section 11).
	CmdRelease CommandKind = "release" // RELEASE <payment id>: pay the merchant from escrow
	CmdDispute CommandKind = "dispute" // DISPUTE <payment id>: keep it in escrow for an operator
	// Lost-phone lock (contract section 14), from any phone.
	CmdLock CommandKind = "lock" // LOCK <wallet number> <id number>
)

// CmdSales is SALES: today's takings, for a merchant's or a store's phone (contract
// section 11).
const CmdSales CommandKind = "sales"

// Command is one parsed SMS. Problem, when set, says why a recognised keyword's
// arguments were refused, or which help a HELP asks for (the user is told and nothing
// changes).
type Command struct {
	Kind      CommandKind
	Merchant  string // PAY, BUY, STOP, START: merchant code
	Product   string // BUY: the product code
	Quantity  int64  // BUY: how many, 1 when left out
	MSISDN    string // SEND: recipient; TOPUP: optional recipient; WITHDRAW: the agent; as typed
	Amount    int64  // minor units
	Reference string // PAY: optional free text
	Code      string // confirm: the digits typed
	PaymentID string // RELEASE, DISPUTE: the payment, upper-cased
	IDNumber  string // LOCK: the wallet owner's id number (MSISDN is the wallet's number)
	Problem   Problem
}

// Problem is a reason a command or request is refused; it selects the message text.
type Problem string

// Problems the user is told about.
const (
	ProblemNone          Problem = ""
	ProblemUsagePay      Problem = "usage_pay"
	ProblemUsageSend     Problem = "usage_send"
	ProblemUsageTopup    Problem = "usage_topup"
	ProblemBadAmount     Problem = "bad_amount"
	ProblemBadNumber     Problem = "bad_number"
	ProblemBadCode       Problem = "bad_code_format"
	ProblemBadReference  Problem = "bad_reference"
	ProblemUsageBuy      Problem = "usage_buy"
	ProblemBadQuantity   Problem = "bad_quantity"
	ProblemUsageStop     Problem = "usage_stop"
	maxReferenceRunes            = 40
	maxCommandRunes              = 480
	maxReasonableCodeLen         = 10
	minReasonableCodeLen         = 4
)

// Refusals of amounts that could be read more than one way: ProblemUnclearAmount for
// digits grouped or split some other way than the switch reads ("15.000", "15,00"),
// ProblemSpaced* for an amount followed by a word that could be the rest of it
// ("PAY 55501 15 000"). Each is answered with how to write it, never read as a smaller
// amount.
const (
	ProblemUnclearAmount Problem = "amount_unclear"
	ProblemSpacedPay     Problem = "spaced_pay"
	ProblemSpacedSend    Problem = "spaced_send"
	ProblemSpacedTopup   Problem = "spaced_topup"
)

// ParseCommand reads an SMS into a Command. Keywords are case-insensitive and extra spaces
// are ignored. digits is otp.digits: a message of exactly that many digits is a code.
// Anything not understood is CmdHelp, which never changes state.
func ParseCommand(text string, digits int) Command {
	if len([]rune(text)) > maxCommandRunes {
		return Command{Kind: CmdHelp}
	}
	f := strings.FieldsFunc(text, func(r rune) bool { return unicode.IsSpace(r) })
	if len(f) == 0 {
		return Command{Kind: CmdHelp}
	}
	kw := strings.ToUpper(f[0])
	args := f[1:]
	switch kw {
	case "PAY":
		c := Command{Kind: CmdPay}
		if len(args) < 2 || !ValidMerchantCode(args[0]) {
			c.Problem = ProblemUsagePay
			return c
		}
		c.Merchant = args[0]
		amt, err := ParseAmount(args[1])
		if err != nil {
			c.Problem = amountProblem(err)
			return c
		}
		if len(args) > 2 && spacedAmount(args[1], args[2]) {
			// "PAY 55501 15 000" is not KES 15.00 with reference 000.
			return Command{Kind: CmdPay, Problem: ProblemSpacedPay}
		}
		c.Amount = amt
		if len(args) > 2 {
			ref := strings.Join(args[2:], " ")
			if len([]rune(ref)) > maxReferenceRunes || !printable(ref) {
				c.Problem = ProblemBadReference
				return c
			}
			c.Reference = ref
		}
		return c
	case "SEND":
		c := Command{Kind: CmdSend}
		if len(args) != 2 {
			c.Problem = ProblemUsageSend
			if spacedWords(args) {
				c.Problem = ProblemSpacedSend
			}
			return c
		}
		c.MSISDN = args[0]
		amt, err := ParseAmount(args[1])
		if err != nil {
			c.Problem = amountProblem(err)
			return c
		}
		c.Amount = amt
		return c
	case "TOPUP":
		c := Command{Kind: CmdTopup}
		if spacedWords(args) {
			// No phone number is three digits: "TOPUP 1 500" is one amount.
			c.Problem = ProblemSpacedTopup
			return c
		}
		if len(args) < 1 || len(args) > 2 {
			c.Problem = ProblemUsageTopup
			return c
		}
		amt, err := ParseAmount(args[0])
		if err != nil {
			c.Problem = amountProblem(err)
			return c
		}
		c.Amount = amt
		if len(args) == 2 {
			c.MSISDN = args[1]
		}
		return c
	case "OK":
		if len(args) != 1 {
			return Command{Kind: CmdConfirm, Problem: ProblemBadCode}
		}
		return Command{Kind: CmdConfirm, Code: args[0]}
	case "RESEND":
		if len(args) == 0 {
			return Command{Kind: CmdResend}
		}
	case "CANCEL":
		if len(args) == 0 {
			return Command{Kind: CmdCancel}
		}
	case "BAL", "BALANCE":
		if len(args) == 0 {
			return Command{Kind: CmdBalance}
		}
	case "MINI":
		if len(args) == 0 {
			return Command{Kind: CmdMini}
		}
	case "NO":
		if len(args) == 0 {
			return Command{Kind: CmdDecline}
		}
	case "BUY":
		return parseBuy(args)
	case "STOP", "START":
		c := Command{Kind: CmdStop}
		if kw == "START" {
			c.Kind = CmdStart
		}
		if len(args) != 1 || !ValidMerchantCode(args[0]) {
			c.Problem = ProblemUsageStop
			return c
		}
		c.Merchant = args[0]
		return c
	case "HELP":
		return parseHelp(args)
	case "WITHDRAW": // cash out at an agent (contract section 14; fees.go)
		c := Command{Kind: CmdWithdraw}
		if len(args) != 2 {
			c.Problem = ProblemUsageWithdraw
			return c
		}
		amt, err := ParseAmount(args[1])
		if err != nil {
			c.Problem = amountProblem(err)
			return c
		}
		c.MSISDN, c.Amount = args[0], amt
		return c
	case "LOCK":
		// The wallet's number is checked by the engine; an id number must be digits.
		if len(args) != 2 || !ValidIDNumber(args[1]) {
			return Command{Kind: CmdLock, Problem: ProblemUsageLock}
		}
		return Command{Kind: CmdLock, MSISDN: args[0], IDNumber: args[1]}
	case "RELEASE", "DISPUTE":
		c := Command{Kind: CmdRelease}
		if kw == "DISPUTE" {
			c.Kind = CmdDispute
		}
		if len(args) != 1 || !ValidPaymentID(strings.ToUpper(args[0])) {
			c.Problem = ProblemUsageEscrow
			return c
		}
		c.PaymentID = strings.ToUpper(args[0])
		return c
	case "SALES":
		if len(args) == 0 {
			return Command{Kind: CmdSales}
		}
	}
	if len(f) == 1 && allDigits(kw) {
		if len(kw) == digits {
			return Command{Kind: CmdConfirm, Code: kw}
		}
		if len(kw) >= minReasonableCodeLen && len(kw) <= maxReasonableCodeLen {
			// Looks like a mistyped code: say so rather than show the whole help text,
			// but do not count it as an attempt.
			return Command{Kind: CmdConfirm, Problem: ProblemBadCode}
		}
	}
	return Command{Kind: CmdHelp}
}

// parseBuy reads BUY's arguments: a merchant code, a product code and an optional
// quantity, a whole number from 1 to maxQuantity (1 when left out).
func parseBuy(args []string) Command {
	c := Command{Kind: CmdBuy, Quantity: 1}
	if len(args) < 2 || len(args) > 3 || !ValidMerchantCode(args[0]) || !ValidProductCode(args[1]) {
		c.Problem = ProblemUsageBuy
		return c
	}
	c.Merchant, c.Product = args[0], args[1]
	if len(args) == 3 {
		n, ok := ParseQuantity(args[2])
		if !ok {
			c.Problem = ProblemBadQuantity
			return c
		}
		c.Quantity = n
	}
	return c
}

// ParseQuantity reads a quantity as a customer types it, after BUY or at the USSD
// menu's prompt: a whole number from 1 to MaxQuantity in digits, and no more digits than
// MaxQuantity has ("0002" is 2, "00002" is refused).
func ParseQuantity(s string) (int64, bool) {
	if !allDigits(s) || len(s) > len(strconv.Itoa(maxQuantity)) {
		return 0, false
	}
	n, _ := strconv.ParseInt(s, 10, 64)
	if n < 1 || n > maxQuantity {
		return 0, false
	}
	return n, true
}

// ProblemHelpMore selects the second page of the help (HELP 2).
const ProblemHelpMore Problem = "help_more"

// helpTopics are what HELP <word> answers with: a command's usage, or the second page of
// the help (codes, NO, STOP), which HELP 2 and HELP MORE ask for. A topic travels as the
// Command's Problem: HandleSMS answers a Problem with its text and changes nothing, which
// is all a HELP does. A HELP without a word, or with one not here, is the first page.
var helpTopics = map[string]Problem{
	"2": ProblemHelpMore, "MORE": ProblemHelpMore, "NO": ProblemHelpMore,
	"OK": ProblemHelpMore, "CODE": ProblemHelpMore, "RESEND": ProblemHelpMore, "CANCEL": ProblemHelpMore,
	"PAY": ProblemUsagePay, "BUY": ProblemUsageBuy, "SEND": ProblemUsageSend, "TOPUP": ProblemUsageTopup,
	"STOP": ProblemUsageStop, "START": ProblemUsageStop,
	"RELEASE": ProblemUsageEscrow, "DISPUTE": ProblemUsageEscrow,
	"WITHDRAW": ProblemUsageWithdraw,
	"LOCK":     ProblemUsageLock,
}

// parseHelp reads HELP's one optional word, its topic.
func parseHelp(args []string) Command {
	if len(args) == 1 {
		return Command{Kind: CmdHelp, Problem: helpTopics[strings.ToUpper(args[0])]}
	}
	return Command{Kind: CmdHelp}
}

// amountProblem is the refusal for an amount that ParseAmount refused with err.
func amountProblem(err error) Problem {
	if errors.Is(err, ErrUnclearAmount) {
		return ProblemUnclearAmount
	}
	return ProblemBadAmount
}

// spacedWords reports whether two neighbouring words could be one number written with a
// space between its digit groups: "15 000", or a phone number as "0712 345 678".
func spacedWords(words []string) bool {
	for i := 1; i < len(words); i++ {
		if wholeNumber.MatchString(words[i-1]) && spacedAmount(words[i-1], words[i]) {
			return true
		}
	}
	return false
}

// wholeNumber matches digits, perhaps grouped by ',': a word that a digit group after it
// could continue.
var wholeNumber = regexp.MustCompile(`^[0-9][0-9,]*$`)

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
