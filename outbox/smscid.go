package outbox

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// storable is text from an SMSC (a message ID from a submit_sm_resp or a receipt, a
// receipt's stat) as the outbox keeps it. Any bytes may come, but PostgreSQL's text takes
// neither a NUL nor bytes that are not UTF-8, and refused them there: a MarkSent that
// could not be recorded left its message to be sent again when its lease ran out, and
// again after that. Such text is kept quoted (strconv.QuoteToASCII: "\xff\x00" becomes
// the ten characters "\"\\xff\\x00\""), the same on both drivers, so that a receipt
// carrying the same bytes still finds its part; text both take is kept as it came.
func storable(s string) string {
	if utf8.ValidString(s) && !strings.Contains(s, "\x00") {
		return s
	}
	return strconv.QuoteToASCII(s)
}

// storableText is free text (an attempt's error) as both drivers store it: what is not
// UTF-8 becomes U+FFFD and NULs are dropped, since it is read, never matched.
func storableText(s string) string {
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
}
