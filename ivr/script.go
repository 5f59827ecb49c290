package ivr

import (
	"container/list"
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/payswitch/payswitch/ledger"
	payswitch "github.com/payswitch/payswitch/switch"
)

// node is a place in a call's script: what the caller's next keys answer.
type node uint8

const (
	nodeMenu     node = iota // inbound: 1 pay a merchant, 2 send money, 3 balance
	nodeMerchant             // the merchant code
	nodeNumber               // the recipient's number
	nodeAmount               // the amount in whole units
	nodeCode                 // the code of the payment waiting (inbound and payer_confirm)
	nodeFallback             // payer_confirm without an SMS: the amount, keyed to confirm
	nodeNotice               // outbound merchant_notice: 1 repeats it
	nodeDone                 // the call was answered with a final Say
	// The lost-phone lock (lostphone.go).
	nodeLockOffer  // a caller without an account: 9 locks a lost phone's wallet
	nodeLockWallet // the number of the wallet to lock
	nodeLockID     // its owner's id number
)

// Purposes of outbound calls, as the outbox message's Purpose.
const (
	PurposeMerchantNotice = "merchant_notice"
	PurposePayerConfirm   = "payer_confirm"
)

// session is one call's place in its script.
type session struct {
	// id and el are the index's (see sessionIndex), guarded by Service.mu.
	id string
	el *list.Element

	mu sync.Mutex // serialises the steps of this call; guards every field below

	outbound bool
	phone    string // the customer, normalised: the caller inbound, the called outbound
	node     node
	misses   int    // wrong or missing keys at the current prompt
	notices  int    // times the notice was repeated
	ask      string // the prompt of the current node, said again after a bad key
	digits   int    // numDigits of the current prompt
	typ      payswitch.PaymentType
	field    string    // merchant code or recipient's number as keyed, before the amount
	payee    string    // spoken payee of that field, for the amount prompt
	payment  string    // ID of the payment waiting for its code, or announced
	callMsg  int64     // outbox ID of a payer_confirm call that carries a code (nodeFallback)
	notice   string    // the notice text, for repeats
	last     Response  // the final answer, said again if the gateway asks again
	seen     time.Time // last step, for the idle timeout
}

// handle answers one callback.
func (s *Service) handle(ctx context.Context, cb callback) Response {
	resp, dir, result := s.step(ctx, cb)
	s.callbacks.WithLabelValues(dir, result).Inc()
	return resp
}

func (s *Service) step(ctx context.Context, cb callback) (resp Response, dir, result string) {
	dir = "inbound"
	if cb.direction == "outbound" {
		dir = "outbound"
	}
	if cb.sessionID == "" || len(cb.sessionID) > maxSessionID || !utf8.ValidString(cb.sessionID) {
		return rejection(), dir, "reject"
	}
	if !cb.active {
		// The call is over. Nothing is cancelled: a payment waiting for its code can
		// still be confirmed by SMS until the code expires.
		s.end(cb.sessionID)
		return Response{}, dir, "hangup"
	}

	if s.db != nil {
		return s.stepDB(ctx, cb, dir)
	}
	sess, known := s.lookup(cb.sessionID)
	if known && cb.direction == "" && sess.outbound {
		dir = "outbound" // a gateway that names the direction only at the start
	}
	outbound := dir == "outbound"
	raw := cb.caller
	if outbound {
		raw = cb.dest
	}
	phone, err := s.engine.Normalize(raw)
	if err != nil {
		if outbound {
			return rejection(), dir, "reject" // no call of ours goes to a non-number
		}
		if strings.TrimSpace(raw) == "" && cb.direction == "" {
			return rejection(), dir, "reject" // nothing says this is a call at all
		}
		return final(s.texts.Render("hidden_number", nil)), dir, "end"
	}

	now := s.now()
	if known {
		sess.mu.Lock()
		switch {
		case sess.phone != phone || sess.outbound != outbound:
			// Someone else's session ID: leave that call alone.
			sess.mu.Unlock()
			return final(s.texts.Render("session_gone", nil)), dir, "unknown"
		case now.Sub(sess.seen) > s.cfg.SessionTimeout || !s.current(cb.sessionID, sess):
			sess.mu.Unlock()
			s.forget(sess)
			known = false
		}
	}
	if !known {
		return s.start(ctx, cb, phone, outbound, now)
	}
	defer sess.mu.Unlock()
	sess.seen = now
	resp = s.next(ctx, sess, cb.digits)
	if resp.ends() {
		sess.node, sess.last = nodeDone, resp
		return resp, dir, "end"
	}
	return resp, dir, "prompt"
}

// start begins the script of a call that has no session yet.
func (s *Service) start(ctx context.Context, cb callback, phone string, outbound bool, now time.Time) (Response, string, string) {
	dir := "inbound"
	if outbound {
		dir = "outbound"
	}
	if !outbound && strings.TrimSpace(strings.TrimRight(cb.digits, finishKey)) != "" {
		// Keys for a call we do not know: the switch restarted or the call idled out.
		return final(s.texts.Render("session_gone", nil)), dir, "unknown"
	}
	sess := &session{outbound: outbound, phone: phone, seen: now}
	var resp Response
	if outbound {
		// Keys for an outbound call we do not know (after a restart) start its script
		// again: the call and its purpose are in the outbox.
		var found bool
		if resp, found = s.startOutbound(ctx, cb.sessionID, sess); !found {
			if resp.Reject != nil {
				return resp, dir, "reject"
			}
			return resp, dir, "unknown" // nothing to remember
		}
	} else {
		sess.node = nodeMenu
		resp = s.ask(sess, s.texts.Render("welcome", nil)+" ", s.texts.Render("menu", nil), 1)
		if s.noAccount(ctx, phone) {
			// A borrowed phone may lock a lost one's wallet, and do nothing else.
			sess.node = nodeLockOffer
			resp = s.ask(sess, s.texts.Render("welcome", nil)+" ", s.texts.Render("no_account_lock", nil), 1)
		}
	}
	result := "prompt"
	if resp.ends() {
		result = "end"
		sess.node, sess.last = nodeDone, resp
	}
	// When two first callbacks of a call race, the other one's session stands and this
	// answer is the same.
	if s.db != nil {
		s.keepDB(ctx, cb.sessionID, sess)
	} else {
		s.store(cb.sessionID, sess)
	}
	return resp, dir, result
}

// noAccount reports whether phone has no account, so that its caller is told at once,
// and offered only the lost-phone lock, instead of the whole menu. A failed look-up
// lets the call go on: the engine refuses a payment of such a number anyway.
func (s *Service) noAccount(ctx context.Context, phone string) bool {
	has, err := s.engine.HasAccount(ctx, phone)
	if err != nil {
		s.log.Error().Err(err).Str("caller", payswitch.Mask(phone)).Msg("account look-up failed")
		return false
	}
	return !has
}

// ask makes the prompt of the node sess is at: pre (a reason, a notice) then ask, which
// is said again after a wrong or missing key.
func (s *Service) ask(sess *session, pre, ask string, numDigits int) Response {
	sess.ask, sess.digits, sess.misses = ask, numDigits, 0
	return prompt(pre+ask, numDigits)
}

// miss answers a wrong or missing key: the prompt again after why, at most maxRepeats
// times, then a polite end. Nothing moves.
func (s *Service) miss(sess *session, why string) Response {
	sess.misses++
	if sess.misses > maxRepeats {
		switch sess.node {
		case nodeCode:
			return final(s.texts.Render("give_up_code", map[string]string{"id": Spell(sess.payment)}))
		case nodeFallback:
			return final(s.texts.Render("give_up_fallback", map[string]string{"id": Spell(sess.payment)}))
		case nodeNotice:
			return final(s.texts.Render("goodbye", nil))
		}
		return final(s.texts.Render("give_up", nil))
	}
	return prompt(why+" "+sess.ask, sess.digits)
}

// keys reads what the caller keyed: the digits without the finish key, whether nothing
// was keyed, and whether it was only digits.
func keys(raw string) (digits string, missing, ok bool) {
	d := strings.TrimSpace(raw)
	d = strings.TrimRight(d, finishKey)
	d = strings.TrimSpace(d)
	if d == "" {
		return "", true, false
	}
	if len(d) > 32 {
		return "", false, false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return "", false, false
		}
	}
	return d, false, true
}

// next answers the keys of a call in progress.
func (s *Service) next(ctx context.Context, sess *session, raw string) Response {
	if sess.node == nodeDone {
		return sess.last
	}
	digits, missing, ok := keys(raw)
	if sess.node == nodeNotice {
		// Anything but 1, even silence, ends the notice.
		if digits != "1" || sess.notices >= maxNotices {
			return final(s.texts.Render("goodbye", nil))
		}
		sess.notices++
		return prompt(sess.notice+" "+sess.ask, 1)
	}
	if missing && sess.node == nodeLockOffer {
		return final(s.texts.Render("refused_no_account", nil)) // silence: no lock wanted
	}
	if missing {
		return s.miss(sess, s.texts.Render("no_input", nil))
	}
	switch sess.node {
	case nodeMenu:
		switch digits {
		case "1":
			sess.node, sess.typ = nodeMerchant, payswitch.MerchantPayment
			return s.ask(sess, "", s.texts.Render("ask_merchant", nil), 0)
		case "2":
			sess.node, sess.typ = nodeNumber, payswitch.TransferPayment
			return s.ask(sess, "", s.texts.Render("ask_number", nil), 0)
		case "3":
			return s.balance(ctx, sess)
		case "9":
			return s.askLockWallet(sess)
		}
		return s.miss(sess, s.texts.Render("invalid", nil))
	case nodeMerchant:
		return s.merchant(ctx, sess, digits, ok)
	case nodeNumber:
		if !ok {
			return s.miss(sess, s.texts.Render("bad_number", nil))
		}
		if _, err := s.engine.Normalize(digits); err != nil {
			return s.miss(sess, s.texts.Render("bad_number", nil))
		}
		sess.node, sess.field = nodeAmount, digits
		return s.ask(sess, s.texts.Render("to_number", map[string]string{"number": Spell(digits)})+" ",
			s.amountPrompt(), 0)
	case nodeAmount:
		return s.amount(ctx, sess, digits, ok)
	case nodeCode:
		return s.code(ctx, sess, digits, ok)
	case nodeFallback:
		return s.fallback(ctx, sess, digits, ok)
	case nodeLockOffer, nodeLockWallet, nodeLockID:
		return s.lockStep(ctx, sess, digits, ok)
	}
	return final(s.texts.Render("goodbye", nil))
}

func (s *Service) amountPrompt() string {
	return s.texts.Render("ask_amount", map[string]string{"unit": UnitName(s.engine.Currency())})
}

// merchant checks a merchant code before asking the amount, so that a mistyped code is
// asked again instead of ending the call after the amount.
func (s *Service) merchant(ctx context.Context, sess *session, code string, ok bool) Response {
	bad := s.texts.Render("bad_merchant", map[string]string{"code": Spell(code)})
	if !ok || !payswitch.ValidMerchantCode(code) {
		return s.miss(sess, s.texts.Render("invalid", nil))
	}
	m, err := s.engine.Merchant(ctx, code)
	if errors.Is(err, ledger.ErrNotFound) {
		return s.miss(sess, bad)
	}
	if err != nil {
		s.log.Error().Err(err).Str("caller", payswitch.Mask(sess.phone)).Msg("merchant look-up failed")
		return final(s.texts.Render("temporary_error", nil))
	}
	sess.node, sess.field = nodeAmount, code
	sess.payee = m.Name + ", merchant " + Spell(code)
	return s.ask(sess, s.texts.Render("to_merchant", map[string]string{"payee": sess.payee})+" ",
		s.amountPrompt(), 0)
}

// amount requests the payment: the engine holds the funds and sends the code by SMS.
func (s *Service) amount(ctx context.Context, sess *session, digits string, ok bool) Response {
	if !ok || len(digits) > 13 {
		return s.miss(sess, s.texts.Render("bad_amount", nil))
	}
	// Keys are whole units: 150 is 150.00.
	minor, err := payswitch.ParseAmount(digits)
	if err != nil {
		return s.miss(sess, s.texts.Render("bad_amount", nil))
	}
	req := payswitch.Request{Channel: payswitch.ChannelIVR, Type: sess.typ, Payer: sess.phone, Amount: minor}
	if sess.typ == payswitch.MerchantPayment {
		req.Merchant = sess.field
	} else {
		req.Recipient = sess.field
	}
	out, err := s.engine.Request(ctx, req)
	if err != nil {
		s.log.Error().Err(err).Str("caller", payswitch.Mask(sess.phone)).Msg("payment request failed")
		return final(s.texts.Render("temporary_error", nil))
	}
	switch {
	case out.OK() && out.Payment.State != payswitch.StatePendingOTP:
		// Graded low with frictionless on (risk grading): done without a code.
		v := s.vars(out.Payment)
		v["balance"] = s.posted(ctx, sess.phone)
		return final(s.texts.Render(s.withFee("success", out.Payment), v))
	case out.OK():
		sess.node, sess.payment = nodeCode, out.Payment.ID
		return s.ask(sess, s.texts.Render(s.withFee("code_sent", out.Payment), s.vars(out.Payment))+" ", s.enterCode(), s.engine.CodeDigits())
	case out.Problem == payswitch.ProblemPendingExists && out.Payment != nil:
		// The caller has one waiting (from an earlier call, SMS or USSD): finish that one.
		sess.node, sess.payment = nodeCode, out.Payment.ID
		return s.ask(sess, s.texts.Render(s.withFee("pending_exists", out.Payment), s.vars(out.Payment))+" ", s.enterCode(), s.engine.CodeDigits())
	}
	key := "refused_" + string(out.Problem)
	if !s.texts.Has(key) {
		key = "refused"
	}
	vars := map[string]string{"code": Spell(sess.field), "number": Spell(sess.field), "payee": sess.payee}
	if out.Problem == payswitch.ProblemInsufficientFunds {
		vars["available"] = s.available(ctx, sess.phone)
	}
	return final(s.texts.Render(key, vars))
}

// enterCode is the code prompt said again after a wrong or missing code.
func (s *Service) enterCode() string {
	return s.texts.Render("enter_code", map[string]string{"digits": NumberWords(int64(s.engine.CodeDigits()))})
}

// code confirms the payment waiting with the keyed code.
func (s *Service) code(ctx context.Context, sess *session, digits string, ok bool) Response {
	n := s.engine.CodeDigits()
	if !ok || len(digits) != n {
		return s.miss(sess, s.texts.Render("bad_code", map[string]string{"digits": NumberWords(int64(n))}))
	}
	out, err := s.engine.Confirm(ctx, payswitch.ChannelIVR, sess.phone, sess.payment, digits)
	if err != nil {
		s.log.Error().Err(err).Str("caller", payswitch.Mask(sess.phone)).Str("payment", sess.payment).Msg("confirmation failed")
		return final(s.texts.Render("temporary_error_code", map[string]string{"id": Spell(sess.payment)}))
	}
	id := map[string]string{"id": Spell(sess.payment)}
	switch out.Problem {
	case payswitch.ProblemNone:
		v := s.vars(out.Payment)
		v["balance"] = s.posted(ctx, sess.phone)
		return final(s.texts.Render(s.withFee("success", out.Payment), v))
	case payswitch.ProblemWrongCode:
		sess.misses = 0
		if tries, ok := triesLeft(out.Text); ok {
			left := NumberWords(int64(tries)) + " tries"
			if tries == 1 {
				left = "one try"
			}
			return prompt(s.texts.Render("wrong_code", map[string]string{"tries": left}), n)
		}
		return prompt(s.texts.Render("wrong_code_again", nil), n)
	}
	if r, ok := s.codeRefused(out, id); ok {
		return r
	}
	// No payment waiting: confirmed meanwhile by SMS, say, or expired.
	return s.paymentState(ctx, sess.payment)
}

// codeRefused is what a caller hears when a code ended its payment or was not checked;
// ok is false for the other outcomes, which each caller answers in its own way.
func (s *Service) codeRefused(out payswitch.Outcome, id map[string]string) (r Response, ok bool) {
	switch out.Problem {
	case payswitch.ProblemTooManyAttempts:
		if !out.LockedUntil.IsZero() {
			loc := s.cfg.Location
			if loc == nil {
				loc = time.UTC
			}
			v := map[string]string{"id": id["id"], "until": out.LockedUntil.In(loc).Format("15:04 MST")}
			return final(s.texts.Render("locked_failed", v)), true
		}
		return final(s.texts.Render("too_many_attempts", id)), true
	case payswitch.ProblemCodeExpired:
		return final(s.texts.Render("code_expired", id)), true
	case payswitch.ProblemOriginLimited:
		return final(s.texts.Render("origin_limited", id)), true
	}
	return Response{}, false
}

// paymentState says where a payment no longer waiting for its code stands.
func (s *Service) paymentState(ctx context.Context, id string) Response {
	p, err := s.engine.Payment(ctx, id)
	switch {
	case err != nil:
		return final(s.texts.Render("no_pending", nil))
	case p.State == payswitch.StateCompleted || p.State == payswitch.StateTopupPending:
		return final(s.texts.Render("state_completed", s.vars(p)))
	}
	return final(s.texts.Render("state_ended", s.vars(p)))
}

// triesWords finds the tries left in the engine's wrong-code text ("... 2 tries left."),
// which is configurable; when it cannot, the IVR asks again without the count.
var triesWords = regexp.MustCompile(`(?i)\b([0-9]{1,2})\s+(?:more\s+)?(?:tries|try|attempts?)\b`)

func triesLeft(text string) (int, bool) {
	m := triesWords.FindStringSubmatch(text)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil && n > 0
}

// balance says the caller's available balance and ends the call.
func (s *Service) balance(ctx context.Context, sess *session) Response {
	a, err := s.engine.AccountByMSISDN(ctx, sess.phone)
	if errors.Is(err, ledger.ErrNotFound) {
		return final(s.texts.Render("refused_no_account", nil))
	}
	if err != nil {
		s.log.Error().Err(err).Str("caller", payswitch.Mask(sess.phone)).Msg("balance look-up failed")
		return final(s.texts.Render("temporary_error", nil))
	}
	return final(s.texts.Render("balance", map[string]string{"available": s.words(a.Balance.Available)}))
}

// available is msisdn's available balance in words; "" when it cannot be read.
func (s *Service) available(ctx context.Context, msisdn string) string {
	a, err := s.engine.AccountByMSISDN(ctx, msisdn)
	if err != nil {
		return ""
	}
	return s.words(a.Balance.Available)
}

// posted is msisdn's posted balance in words, as the SMS receipt gives it.
func (s *Service) posted(ctx context.Context, msisdn string) string {
	a, err := s.engine.AccountByMSISDN(ctx, msisdn)
	if err != nil {
		return ""
	}
	return s.words(a.Balance.Posted)
}

func (s *Service) words(minor int64) string { return AmountWords(s.engine.Currency(), minor) }

// vars are the placeholders of texts about p, in spoken form.
func (s *Service) vars(p *payswitch.Payment) map[string]string {
	v := map[string]string{
		"id":     Spell(p.ID),
		"amount": AmountWords(p.Currency, p.Amount),
		"payee":  spokenPayee(p),
		"payer":  spokenMasked(p.PayerMSISDN),
		"digits": NumberWords(int64(s.engine.CodeDigits())),
		"unit":   UnitName(p.Currency),
	}
	if p.Fee > 0 { // the "_fee" texts (fees.go)
		v["fee"] = AmountWords(p.Currency, p.Fee)
	}
	return v
}

// spokenPayee names the payee to the payer: "Mama Mboga, merchant 5 5 5 0 1", or a
// person's name and masked number.
func spokenPayee(p *payswitch.Payment) string {
	switch {
	case p.PayeeCode != "":
		return p.PayeeName + ", merchant " + Spell(p.PayeeCode)
	case p.TargetMSISDN != "":
		return spokenMasked(p.TargetMSISDN)
	case p.PayeeMSISDN != "" && p.PayeeName != "":
		return p.PayeeName + ", " + spokenMasked(p.PayeeMSISDN)
	case p.PayeeMSISDN != "":
		return spokenMasked(p.PayeeMSISDN)
	}
	return p.PayeeName
}
