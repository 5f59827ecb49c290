package payswitch

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// ErrBadAmount is returned for text that is not a positive amount with at most two decimals.
var ErrBadAmount = errors.New("payswitch: invalid amount")

// ErrUnclearAmount is an ErrBadAmount for text made of digits and the marks that people
// group thousands or write decimals with (spaces, '.', ',', apostrophes) that is not an
// amount as the switch reads them: "15.000" or "15 000" (15000 in some places), "15,00"
// (15.00 in others). The switch never guesses which was meant: the user is asked to
// write it again, and told how.
var ErrUnclearAmount = fmt.Errorf("%w: write it with digits, ',' between thousands and '.' before cents", ErrBadAmount)

// maxAmount keeps parsed amounts far from int64 overflow in any sum the engine makes.
const maxAmount = 1_000_000_000_000_00 // one trillion major units

// ParseAmount reads an amount as people type it into minor units: "150" is 15000,
// "150.5" and "150.50" are 15050, "1,500" and "1,500.00" are 150000. Thousands separators
// must be ',' between groups of exactly three digits; signs, exponents and more than two
// decimals are refused. Digits with other grouping or decimal marks are ErrUnclearAmount.
func ParseAmount(s string) (int64, error) {
	v, err := parseAmount(strings.TrimSpace(s))
	if errors.Is(err, ErrBadAmount) && looksGrouped(s) {
		return 0, ErrUnclearAmount
	}
	return v, err
}

// looksGrouped reports whether s is digits with marks that group or split them, and
// nothing else: an amount written some other way than the switch reads.
func looksGrouped(s string) bool {
	s = strings.TrimSpace(s)
	digits, marks := 0, 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '.' || r == ',' || r == '\'' || r == '’' || unicode.IsSpace(r):
			marks++
		default:
			return false
		}
	}
	return digits > 0 && marks > 0
}

func parseAmount(s string) (int64, error) {
	if s == "" {
		return 0, ErrBadAmount
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	if hasFrac && (len(frac) == 0 || len(frac) > 2) {
		return 0, ErrBadAmount
	}
	if strings.Contains(whole, ",") {
		groups := strings.Split(whole, ",")
		if len(groups[0]) == 0 || len(groups[0]) > 3 {
			return 0, ErrBadAmount
		}
		for _, g := range groups[1:] {
			if len(g) != 3 {
				return 0, ErrBadAmount
			}
		}
		whole = strings.Join(groups, "")
	}
	if whole == "" || !allDigits(whole) || (hasFrac && !allDigits(frac)) || len(whole) > 13 {
		return 0, ErrBadAmount
	}
	major, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, ErrBadAmount
	}
	var minor int64
	if hasFrac {
		if len(frac) == 1 {
			frac += "0"
		}
		minor, _ = strconv.ParseInt(frac, 10, 64)
	}
	v := major*100 + minor
	if v <= 0 || v > maxAmount {
		return 0, ErrBadAmount
	}
	return v, nil
}

// FormatMoney writes minor units as people read them: "KES 1,500.00".
func FormatMoney(currency string, minor int64) string {
	return currency + " " + FormatAmount(minor)
}

// FormatAmount writes minor units with thousands separators and two decimals: "1,500.00".
func FormatAmount(minor int64) string {
	neg := minor < 0
	if neg {
		minor = -minor
	}
	major := strconv.FormatInt(minor/100, 10)
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range major {
		if i > 0 && (len(major)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	cents := minor % 100
	b.WriteByte('.')
	b.WriteByte(byte('0' + cents/10))
	b.WriteByte(byte('0' + cents%10))
	return b.String()
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// groupTail matches a word that would continue an amount written with spaces between
// its thousands: exactly three digits, alone or followed by more groups or decimals
// ("000", "000.50", "500,000"). Such a word right after an amount means the amount
// typed was probably longer than the one read.
var groupTail = regexp.MustCompile(`^[0-9]{3}(?:[.,'’][0-9.,'’]*)?$`)

// spacedAmount reports whether amount, a word read as a whole amount, and next, the word
// after it, could be one amount written with a space between its thousands ("15 000").
func spacedAmount(amount, next string) bool {
	return !strings.Contains(amount, ".") && groupTail.MatchString(next)
}
