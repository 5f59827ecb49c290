package ivr

import (
	"strings"
)

// Words for numbers as a text-to-speech engine should read them: British English, with
// "and" before the last part of a number ("one hundred and fifty", "one thousand and
// five") and hyphens in compound tens ("twenty-one"), which every engine we know reads
// as one number.
var (
	smallWords = [...]string{"zero", "one", "two", "three", "four", "five", "six", "seven",
		"eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen",
		"sixteen", "seventeen", "eighteen", "nineteen"}
	tensWords  = [...]string{"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"}
	scaleWords = [...]string{"", "thousand", "million", "billion", "trillion", "quadrillion", "quintillion"}
)

// NumberWords writes n in words: 150 is "one hundred and fifty", 1500 "one thousand five
// hundred", 2000050 "two million and fifty". A negative n is "minus ...".
func NumberWords(n int64) string {
	if n == 0 {
		return smallWords[0]
	}
	var b strings.Builder
	u := uint64(n)
	if n < 0 {
		b.WriteString("minus ")
		u = uint64(-(n + 1)) + 1 // -MinInt64 overflows int64, not uint64
	}
	var groups []uint64 // groups of three digits, lowest first
	for ; u > 0; u /= 1000 {
		groups = append(groups, u%1000)
	}
	first := true
	for i := len(groups) - 1; i >= 0; i-- {
		g := groups[i]
		if g == 0 {
			continue
		}
		if !first {
			b.WriteByte(' ')
			// British usage: "one thousand and five", but "one thousand five hundred".
			if i == 0 && g < 100 {
				b.WriteString("and ")
			}
		}
		first = false
		hundredsWords(&b, g)
		if i > 0 {
			b.WriteByte(' ')
			b.WriteString(scaleWords[i])
		}
	}
	return b.String()
}

// hundredsWords writes 1 <= g <= 999.
func hundredsWords(b *strings.Builder, g uint64) {
	if g >= 100 {
		b.WriteString(smallWords[g/100])
		b.WriteString(" hundred")
		g %= 100
		if g == 0 {
			return
		}
		b.WriteString(" and ")
	}
	if g < 20 {
		b.WriteString(smallWords[g])
		return
	}
	b.WriteString(tensWords[g/10])
	if g%10 != 0 {
		b.WriteByte('-')
		b.WriteString(smallWords[g%10])
	}
}

// unitNames are how a currency's units are spoken: singular and plural of the main unit
// and of its hundredth.
type unitNames struct{ one, many, subOne, subMany string }

// currencyNames covers the currencies of the markets a feature-phone switch serves.
// Others are spoken as their ISO code, spelled, with cents.
var currencyNames = map[string]unitNames{
	"KES": {"shilling", "shillings", "cent", "cents"},
	"UGX": {"shilling", "shillings", "cent", "cents"},
	"TZS": {"shilling", "shillings", "cent", "cents"},
	"SOS": {"shilling", "shillings", "cent", "cents"},
	"NGN": {"naira", "naira", "kobo", "kobo"},
	"GHS": {"cedi", "cedis", "pesewa", "pesewas"},
	"ZAR": {"rand", "rand", "cent", "cents"},
	"ZMW": {"kwacha", "kwacha", "ngwee", "ngwee"},
	"MWK": {"kwacha", "kwacha", "tambala", "tambala"},
	"ETB": {"birr", "birr", "santim", "santim"},
	"RWF": {"franc", "francs", "centime", "centimes"},
	"BIF": {"franc", "francs", "centime", "centimes"},
	"XOF": {"franc", "francs", "centime", "centimes"},
	"XAF": {"franc", "francs", "centime", "centimes"},
	"USD": {"dollar", "dollars", "cent", "cents"},
	"EUR": {"euro", "euros", "cent", "cents"},
	"GBP": {"pound", "pounds", "penny", "pence"},
	"INR": {"rupee", "rupees", "paisa", "paise"},
}

func namesOf(currency string) unitNames {
	if n, ok := currencyNames[strings.ToUpper(currency)]; ok {
		return n
	}
	code := Spell(strings.ToUpper(currency))
	return unitNames{code, code, "cent", "cents"}
}

// UnitName is the plural name of currency's main unit ("shillings" for KES), for
// prompts such as "enter the amount in whole shillings".
func UnitName(currency string) string { return namesOf(currency).many }

// AmountWords writes minor units of currency as they are said: 15000 KES is "one hundred
// and fifty shillings", 150050 "one thousand five hundred shillings and fifty cents", 50
// "fifty cents", 0 "zero shillings".
func AmountWords(currency string, minor int64) string {
	n := namesOf(currency)
	prefix := ""
	if minor < 0 {
		prefix = "minus "
		minor = -minor
	}
	major, cents := minor/100, minor%100
	if minor < 0 { // MinInt64 stays negative when negated
		major, cents = -major, -cents
	}
	plural := func(v int64, one, many string) string {
		if v == 1 {
			return "one " + one
		}
		return NumberWords(v) + " " + many
	}
	switch {
	case cents == 0:
		return prefix + plural(major, n.one, n.many)
	case major == 0:
		return prefix + plural(cents, n.subOne, n.subMany)
	}
	return prefix + plural(major, n.one, n.many) + " and " + plural(cents, n.subOne, n.subMany)
}

// Spell writes s one symbol at a time, separated by spaces, so that a text-to-speech
// engine reads "55501" as "five five five zero one" and a payment ID "K7PQ2RSTUV" letter
// by letter instead of trying to pronounce it. Spaces in s are dropped.
func Spell(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == ' ' {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// spokenMasked says a number that other people may not see in full, digit by digit:
// "254700000001" is "a number starting 2 5 4 7 and ending 0 0 1", the spoken form of
// payswitch.Mask's "2547****001".
func spokenMasked(msisdn string) string {
	if len(msisdn) < 8 {
		return "a hidden number"
	}
	return "a number starting " + Spell(msisdn[:4]) + " and ending " + Spell(msisdn[len(msisdn)-3:])
}
