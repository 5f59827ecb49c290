package ivr

import (
	"math"
	"strings"
	"testing"
)

func TestNumberWords(t *testing.T) {
	tests := []struct {
		name string
		n    int64
		want string
	}{
		{"zero", 0, "zero"},
		{"one", 1, "one"},
		{"teen", 13, "thirteen"},
		{"round ten", 40, "forty"},
		{"compound ten", 21, "twenty-one"},
		{"hundred", 100, "one hundred"},
		{"hundred and tens", 150, "one hundred and fifty"},
		{"hundred and one", 101, "one hundred and one"},
		{"hundreds and compound", 999, "nine hundred and ninety-nine"},
		{"thousand", 1000, "one thousand"},
		{"thousand and units", 1005, "one thousand and five"},
		{"thousand and tens", 1050, "one thousand and fifty"},
		{"thousand hundreds", 1500, "one thousand five hundred"},
		{"thousand hundreds and", 1550, "one thousand five hundred and fifty"},
		{"hundred thousand", 100000, "one hundred thousand"},
		{"hundred and one thousand", 101000, "one hundred and one thousand"},
		{"million", 1000000, "one million"},
		{"million and tens", 2000050, "two million and fifty"},
		{"million mixed", 2500075, "two million five hundred thousand and seventy-five"},
		{"billion", 7000000001, "seven billion and one"},
		{"trillion", 1000000000000, "one trillion"},
		{"negative", -42, "minus forty-two"},
		{"max int64", math.MaxInt64, "nine quintillion two hundred and twenty-three quadrillion three hundred and seventy-two trillion thirty-six billion eight hundred and fifty-four million seven hundred and seventy-five thousand eight hundred and seven"},
		{"min int64", math.MinInt64, "minus nine quintillion two hundred and twenty-three quadrillion three hundred and seventy-two trillion thirty-six billion eight hundred and fifty-four million seven hundred and seventy-five thousand eight hundred and eight"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NumberWords(tt.n); got != tt.want {
				t.Errorf("NumberWords(%d) = %q, want %q", tt.n, got, tt.want)
			}
		})
	}
}

func TestAmountWords(t *testing.T) {
	tests := []struct {
		name     string
		currency string
		minor    int64
		want     string
	}{
		{"whole", "KES", 15000, "one hundred and fifty shillings"},
		{"with cents", "KES", 150050, "one thousand five hundred shillings and fifty cents"},
		{"one unit", "KES", 100, "one shilling"},
		{"one cent", "KES", 1, "one cent"},
		{"cents only", "KES", 50, "fifty cents"},
		{"one and one", "KES", 101, "one shilling and one cent"},
		{"zero", "KES", 0, "zero shillings"},
		{"large", "KES", 1500000000, "fifteen million shillings"},
		{"lower-case code", "kes", 200, "two shillings"},
		{"invariant plural", "NGN", 250, "two naira and fifty kobo"},
		{"pence", "GBP", 1205, "twelve pounds and five pence"},
		{"unknown currency", "XYZ", 300, "three X Y Z"},
		{"unknown with cents", "XYZ", 301, "three X Y Z and one cent"},
		{"negative", "KES", -15000, "minus one hundred and fifty shillings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AmountWords(tt.currency, tt.minor); got != tt.want {
				t.Errorf("AmountWords(%s, %d) = %q, want %q", tt.currency, tt.minor, got, tt.want)
			}
		})
	}
}

func TestSpell(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"merchant code", "55501", "5 5 5 0 1"},
		{"payment ID", "K7PQ2RSTUV", "K 7 P Q 2 R S T U V"},
		{"spaces dropped", "07 12", "0 7 1 2"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Spell(tt.in); got != tt.want {
				t.Errorf("Spell(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSpokenMasked(t *testing.T) {
	if got, want := spokenMasked("254700000001"), "a number starting 2 5 4 7 and ending 0 0 1"; got != want {
		t.Errorf("spokenMasked = %q, want %q", got, want)
	}
	if got := spokenMasked("123"); strings.ContainsAny(got, "0123456789") {
		t.Errorf("spokenMasked of a short number says its digits: %q", got)
	}
}

func BenchmarkAmountWords(b *testing.B) {
	for i := 0; b.Loop(); i++ {
		AmountWords("KES", int64(i)*7919)
	}
}
