package ussd

import (
	"strings"
	"unicode/utf8"
)

// MaxScreen is the most characters an answer may have, its "CON " or "END " included:
// 182 is what a USSD message carries in the GSM 7-bit alphabet.
const MaxScreen = 182

// maxBody is the most characters of a screen's text, leaving room for the prefix.
const maxBody = MaxScreen - len("CON ")

// MoreInput is what the user keys to see the next page of a long screen.
const MoreInput = "98"

// Screen is what the phone shows next. End closes the session (END / PSSR response);
// otherwise the phone waits for an input (CON / USSR request).
type Screen struct {
	Text string
	End  bool
}

// String is the screen in the gateway callback's convention: "CON ..." or "END ...".
func (s Screen) String() string {
	if s.End {
		return "END " + s.Text
	}
	return "CON " + s.Text
}

// cutPage returns the first page of the content body followed by opts (option lines that
// must stay together on the last page). When everything fits in limit characters, page
// is all of it and done is true. Otherwise page is as much of body as fits before a line
// with more, preferring to break at a line end or a space, and the next page is cut from
// rest and restOpts. Options too long for a page of their own are paged like the body.
func cutPage(body, opts, more string, limit int) (page, rest, restOpts string, done bool) {
	if strings.Trim(body, " \n") == "" {
		body = "" // blank: a page of it would show the more option alone
	}
	whole := joinLines(body, opts)
	if utf8.RuneCountInString(whole) <= limit {
		return whole, "", "", true
	}
	if utf8.RuneCountInString(opts) > limit {
		body, opts = whole, ""
	}
	room := limit - utf8.RuneCountInString(more) - 1
	// end is the byte offset after room runes of body.
	end, n := 0, 0
	for end < len(body) && n < room {
		_, size := utf8.DecodeRuneInString(body[end:])
		end += size
		n++
	}
	if end == len(body) {
		// The whole body fits on this page but not with the options: they go next.
		return joinLines(strings.TrimRight(body, " \n"), more), "", opts, false
	}
	cut := end
	if i := strings.LastIndexAny(body[:end], "\n "); i > end/2 {
		cut = i
	}
	page = strings.TrimRight(body[:cut], " \n")
	if page == "" {
		page, cut = body[:end], end
	}
	return joinLines(page, more), strings.TrimLeft(body[cut:], " \n"), opts, false
}

func joinLines(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "\n" + b
}
