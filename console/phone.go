package console

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// The phone in the browser plays a handset on the demo SMSC. Everything runs here, on
// the server, for a signed-in operator only and with the CSRF token on every form: the
// browser never talks to the SMSC's phone API, whose guard keeps web pages out.

type phoneData struct {
	Number      string
	Numbers     []string
	Thread      []PhoneMessage
	ServiceCode string
	Screen      string // the USSD screen on display, if any
	ScreenEnd   bool   // the dialogue has ended
	// Pushed is the screen the network pushed to the number through the SMSC (a
	// request to pay), if any.
	Pushed *PushedScreen
	Err    string
}

// Newest is the thread newest first: the screen stacks it bottom-up (CSS
// column-reverse), which keeps the newest message in view without a script.
func (d phoneData) Newest() []PhoneMessage {
	out := make([]PhoneMessage, len(d.Thread))
	for i, m := range d.Thread {
		out[len(out)-1-i] = m
	}
	return out
}

func (c *Console) phoneOrNotFound() (Phone, error) {
	p := c.b.Phone()
	if p == nil {
		return nil, notFound("the phone in the browser needs the demo SMSC (smpp.demo_smsc), which is off")
	}
	return p, nil
}

// phoneFor is the phone and the number a request names (the form's or the query's n):
// 404 without the demo SMSC, 400 for what is not a phone number.
func (c *Console) phoneFor(number string) (Phone, string, error) {
	p, err := c.phoneOrNotFound()
	if err != nil {
		return nil, "", err
	}
	n, ok := phoneNumber(number)
	if !ok {
		return nil, "", badRequest("n: a phone number")
	}
	return p, n, nil
}

// phoneNumber checks a number as typed: digits with an optional leading '+'.
func phoneNumber(s string) (string, bool) {
	s = strings.TrimSpace(s)
	d := strings.TrimPrefix(s, "+")
	if len(d) < 5 || len(d) > 15 {
		return "", false
	}
	for _, r := range d {
		if r < '0' || r > '9' {
			return "", false
		}
	}
	return d, true
}

func (c *Console) phone(w http.ResponseWriter, r *http.Request, s *request) error {
	p, err := c.phoneOrNotFound()
	if err != nil {
		return err
	}
	c.showPhone(w, r, s, p, phoneData{}, r.URL.Query().Get("n"))
	return nil
}

func (c *Console) showPhone(w http.ResponseWriter, r *http.Request, s *request, p Phone, d phoneData, n string) {
	status := http.StatusOK
	d.Numbers, d.ServiceCode = p.Numbers(), p.ServiceCode()
	if n != "" {
		if num, ok := phoneNumber(n); ok {
			d.Number = num
			d.Thread = p.Thread(num)
			if sc, ok := p.PushedScreen(num); ok {
				d.Pushed = &sc
			}
		} else {
			status, d.Err = http.StatusBadRequest, "Type a phone number: digits only, 5 to 15 of them."
		}
	}
	c.render(w, r, status, "phone", s, pageData{Title: "Phone", Nav: "phone", Err: d.Err, Data: d})
}

// phoneThread is the SMS thread alone, which the phone page polls.
func (c *Console) phoneThread(w http.ResponseWriter, r *http.Request, s *request) error {
	p, n, err := c.phoneFor(r.URL.Query().Get("n"))
	if err != nil {
		return err
	}
	c.renderBlock(w, http.StatusOK, "phone", "thread", s, pageData{Data: phoneData{Number: n, Thread: p.Thread(n)}})
	return nil
}

func (c *Console) phoneSMS(w http.ResponseWriter, r *http.Request, s *request) error {
	p, n, err := c.phoneFor(r.PostFormValue("n"))
	if err != nil {
		return err
	}
	text := strings.TrimSpace(r.PostFormValue("text"))
	if text == "" || utf8.RuneCountInString(text) > 480 {
		c.showPhone(w, r, s, p, phoneData{Err: "Type a message of 1 to 480 characters."}, n)
		return nil
	}
	if err := p.SendSMS(r.Context(), n, text); err != nil {
		c.showPhone(w, r, s, p, phoneData{Err: "Not sent: " + err.Error()}, n)
		return nil
	}
	http.Redirect(w, r, "/console/phone?n="+url.QueryEscape(n), http.StatusSeeOther)
	return nil
}

// phoneUSSD is one step of a USSD dialogue, answered in-process by the switch's menus.
// The dialogue is this browser session's and this number's alone.
func (c *Console) phoneUSSD(w http.ResponseWriter, r *http.Request, s *request) error {
	p, n, err := c.phoneFor(r.PostFormValue("n"))
	if err != nil {
		return err
	}
	input := strings.TrimSpace(r.PostFormValue("input"))
	begin := r.PostFormValue("begin") != ""
	if len(input) > 182 {
		c.showPhone(w, r, s, p, phoneData{Err: "A USSD answer has at most 182 characters."}, n)
		return nil
	}
	sum := sha256.Sum256([]byte(s.cookie))
	session := "console:" + hex.EncodeToString(sum[:8]) + ":" + n
	screen, end, err := p.USSD(r.Context(), session, n, input, begin)
	d := phoneData{Screen: screen, ScreenEnd: end}
	if err != nil && screen == "" {
		d.Err = "USSD: " + err.Error()
	}
	c.showPhone(w, r, s, p, d, n)
	return nil
}

// phonePushed is the pushed screen alone, which the phone page polls while no pushed
// screen waits for an answer: one that waits stops the polling, so that what the user
// types into its form is not swept away.
func (c *Console) phonePushed(w http.ResponseWriter, r *http.Request, s *request) error {
	p, n, err := c.phoneFor(r.URL.Query().Get("n"))
	if err != nil {
		return err
	}
	d := phoneData{Number: n}
	if sc, ok := p.PushedScreen(n); ok {
		d.Pushed = &sc
	}
	c.renderBlock(w, http.StatusOK, "phone", "pushed", s, pageData{Data: d})
	return nil
}

// phoneAnswerPushed keys the user's answer into the screen the network pushed, through
// the SMSC, as the handset would send it; the network's next screen comes by polling.
func (c *Console) phoneAnswerPushed(w http.ResponseWriter, r *http.Request, s *request) error {
	p, n, err := c.phoneFor(r.PostFormValue("n"))
	if err != nil {
		return err
	}
	input := strings.TrimSpace(r.PostFormValue("input"))
	if input == "" || len(input) > 182 {
		c.showPhone(w, r, s, p, phoneData{Err: "A USSD answer has 1 to 182 characters."}, n)
		return nil
	}
	if err := p.AnswerPushed(r.Context(), n, input); err != nil {
		msg := "Not answered: " + err.Error()
		if errors.Is(err, ErrNotFound) {
			msg = "No pushed USSD screen waits for an answer: it was answered, ended or timed out."
		}
		c.showPhone(w, r, s, p, phoneData{Err: msg}, n)
		return nil
	}
	http.Redirect(w, r, "/console/phone?n="+url.QueryEscape(n), http.StatusSeeOther)
	return nil
}
