package ivr

import (
	"encoding/xml"
	"net/http"
)

// Response is the answer to a voice gateway callback, in the XML convention of voice
// APIs. Elements are written in field order: a Say, then a GetDigits (whose own Say is
// the prompt read while it listens), or a Reject alone. A Response without GetDigits
// ends the call once its Say has been read.
type Response struct {
	XMLName   xml.Name   `xml:"Response"`
	Say       *Say       `xml:"Say,omitempty"`
	GetDigits *GetDigits `xml:"GetDigits,omitempty"`
	Reject    *Reject    `xml:"Reject,omitempty"`
}

// Say is text for the gateway's text-to-speech engine. Marshalling escapes it for XML.
type Say struct {
	Text string `xml:",chardata"`
}

// GetDigits reads the prompt in Say and collects keys until FinishOnKey, NumDigits keys
// or Timeout seconds of silence; the gateway then posts them as dtmfDigits.
type GetDigits struct {
	Timeout     int    `xml:"timeout,attr,omitempty"`
	FinishOnKey string `xml:"finishOnKey,attr,omitempty"`
	NumDigits   int    `xml:"numDigits,attr,omitempty"`
	Say         *Say   `xml:"Say,omitempty"`
}

// Reject refuses an incoming call without answering it. encoding/xml writes it as
// <Reject></Reject>, the same element as <Reject/> to any XML parser.
type Reject struct{}

// Prompt timeouts, in seconds: a menu key comes quickly; a code is read off an SMS.
const (
	menuTimeout  = 15
	entryTimeout = 30
	finishKey    = "#"
)

// final is a Response that says text and ends the call.
func final(text string) Response { return Response{Say: &Say{Text: sentences(text)}} }

// prompt is a Response that says text and waits for keys ending with '#', or numDigits
// keys when numDigits > 0.
func prompt(text string, numDigits int) Response {
	timeout := entryTimeout
	if numDigits == 1 {
		timeout = menuTimeout
	}
	return Response{GetDigits: &GetDigits{Timeout: timeout, FinishOnKey: finishKey, NumDigits: numDigits,
		Say: &Say{Text: sentences(text)}}}
}

// sentences makes every sentence of text start with a capital letter, as a text to
// speech engine reads best and as a transcript of the call should: a text that starts
// with a placeholder, or an override, may begin one with "one hundred shillings" or
// "a number starting". Only a lower-case ASCII letter at the start of text or after
// ". ", "! " or "? " changes.
func sentences(text string) string {
	b := []byte(text)
	start := true
	for i, c := range b {
		switch {
		case c == ' ':
			continue
		case start && c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		}
		start = (c == '.' || c == '!' || c == '?') && i+1 < len(b) && b[i+1] == ' '
	}
	return string(b)
}

// rejection refuses the call.
func rejection() Response { return Response{Reject: &Reject{}} }

// ends reports whether the gateway ends the call after r.
func (r Response) ends() bool { return r.GetDigits == nil }

// text is everything r says, for logs of tests and for repeats.
func (r Response) text() string {
	s := ""
	if r.Say != nil {
		s = r.Say.Text
	}
	if r.GetDigits != nil && r.GetDigits.Say != nil {
		if s != "" {
			s += " "
		}
		s += r.GetDigits.Say.Text
	}
	return s
}

// writeXML writes r as the HTTP answer. Marshalling a Response cannot fail (its fields
// are strings and ints; invalid characters in text are replaced, not refused), so the
// fallback only guards against a future field that can.
func writeXML(w http.ResponseWriter, r Response) {
	body, err := xml.Marshal(r)
	if err != nil {
		body = []byte("<Response><Reject></Reject></Response>")
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(xml.Header))
	w.Write(body)
}
