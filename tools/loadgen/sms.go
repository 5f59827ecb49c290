package main

import (
	"strings"
)

// The switch's texts loadgen relies on: it writes the config itself, without a
// `messages` section, so the built-in texts of switch/texts.go apply.
const (
	shortcode  = "22333"
	codeDigits = 6
)

// kind is what an MT means to a phone.
type kind int

const (
	kindOther     kind = iota // a refusal or anything else not below
	kindCode                  // "<id>: pay ... Your code is 123456 ..."
	kindReceipt               // "<id> confirmed. ..."
	kindCancelled             // "<id> cancelled. ..." or "You have no payment waiting for a code."
	kindPending               // "<id> (...) is waiting for your code. ..."
	kindNotice                // a deposit notice: nothing to do
	kindRequest               // "<id>: <payee> requests KES 150.00 ... Reply 123456 within 10 min ..."
	kindDeclined              // "<id> declined. ..." or "You have no request to pay waiting."
)

// sms is an MT as a phone reads it.
type sms struct {
	kind kind
	id   string // the payment ID the text starts with, if any
	text string
	// The code SMS's code, amount (minor units) and till: "<id>: pay KES 150.00 to
	// Mama Mboga (55501)? Your code is 631530, ...". A request's SMS has them too.
	code   string
	amount int64
	till   string
}

// readSMS classifies an MT text from the switch.
func readSMS(text string) sms {
	m := sms{text: text, id: leadingID(text)}
	rest := strings.TrimPrefix(text, m.id)
	switch {
	case m.id != "" && strings.HasPrefix(rest, " confirmed."):
		m.kind = kindReceipt
	case m.id != "" && strings.HasPrefix(rest, " cancelled."), strings.HasPrefix(text, "You have no payment waiting"):
		m.kind = kindCancelled
	case m.id != "" && strings.HasPrefix(rest, " declined."), strings.HasPrefix(text, "You have no request to pay waiting"):
		m.kind = kindDeclined
	case m.id != "" && strings.Contains(rest, "is waiting for your code"):
		m.kind = kindPending
	case strings.Contains(text, "deposited to your account"):
		m.kind = kindNotice
	case m.id != "" && strings.HasPrefix(rest, ": pay "):
		code, ok := findCode(text, codeDigits)
		amount, aok := parseAmount(rest[len(": pay "):])
		till, tok := parseTill(rest)
		if ok && aok && tok {
			m.kind, m.code, m.amount, m.till = kindCode, code, amount, till
		}
	case m.id != "" && strings.HasPrefix(rest, ": ") && strings.Contains(rest, " requests "):
		payee, after, _ := strings.Cut(rest[len(": "):], " requests ")
		code, ok := findCode(text, codeDigits)
		amount, aok := parseAmount(after)
		till, tok := parenthesised(payee)
		if ok && aok && tok {
			m.kind, m.code, m.amount, m.till = kindRequest, code, amount, till
		}
	}
	return m
}

// parseAmount reads "KES 1,500.50 to ..." (or "KES 1,500.50. Reply ...") as 150050.
func parseAmount(s string) (int64, bool) {
	s, ok := strings.CutPrefix(s, "KES ")
	if !ok {
		return 0, false
	}
	num, _, _ := strings.Cut(s, " ")
	if strings.Count(num, ".") == 2 {
		num = strings.TrimSuffix(num, ".") // the end of a sentence
	}
	whole, frac, ok := strings.Cut(strings.ReplaceAll(num, ",", ""), ".")
	if !ok || len(frac) != 2 || whole == "" {
		return 0, false
	}
	var v int64
	for _, c := range whole + frac {
		if c < '0' || c > '9' || v > 1e15 {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// parseTill reads the till code in the payee "Name (55501)?". A till as long as a code
// comes written in groups, "(123 456)", which it joins again.
func parseTill(s string) (string, bool) {
	before, _, ok := strings.Cut(s, ")?")
	if !ok {
		return "", false
	}
	return parenthesised(before + ")")
}

// parenthesised reads the till code of a payee label "Name (55501)", joining a code
// written in groups as parseTill does.
func parenthesised(label string) (string, bool) {
	before, ok := strings.CutSuffix(label, ")")
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(before, '(')
	if i < 0 || i == len(before)-1 {
		return "", false
	}
	return strings.ReplaceAll(before[i+1:], " ", ""), true
}

// leadingID returns the payment ID a text starts with (10 upper-case letters and
// digits, then ':' or ' '), or "".
func leadingID(text string) string {
	const n = 10
	if len(text) <= n || text[n] != ':' && text[n] != ' ' {
		return ""
	}
	for i := range n {
		c := text[i]
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return ""
		}
	}
	return text[:n]
}

// findCode returns the one-time code in text: the only word that is a run of exactly
// digits digits once the punctuation around it is taken off. A number such as 1,500.00
// or a payment ID such as QGL4MPGD85 is never a code. It reports false when there is no
// such word or more than one.
func findCode(text string, digits int) (string, bool) {
	var code string
	found := 0
	for _, w := range strings.Fields(text) {
		w = strings.Trim(w, `.,;:!?()"'`)
		if len(w) != digits || strings.Trim(w, "0123456789") != "" {
			continue
		}
		code = w
		found++
	}
	if found != 1 {
		return "", false
	}
	return code, true
}
