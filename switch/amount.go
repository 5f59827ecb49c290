package payswitch

import (
	"errors"
	"strconv"
	"strings"
)

// ErrBadAmount is returned for text that is not a positive amount with at most two decimals.
var ErrBadAmount = errors.New("payswitch: invalid amount")

// maxAmount keeps parsed amounts far from int64 overflow in any sum the engine makes.
const maxAmount = 1_000_000_000_000_00 // one trillion major units

// ParseAmount reads an amount as people type it into minor units: "150" is 15000,
// "150.5" and "150.50" are 15050, "1,500" and "1,500.00" are 150000. Thousands separators
// must be well placed; signs, exponents and more than two decimals are refused.
func ParseAmount(s string) (int64, error) {
	s = strings.TrimSpace(s)
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
