package ussd

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// pages runs cutPage to the end and returns every page.
func pages(t *testing.T, body, opts string, limit int) []string {
	t.Helper()
	var out []string
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("paging does not end")
		}
		page, rest, restOpts, done := cutPage(body, opts, "98. More", limit)
		if n := utf8.RuneCountInString(page); n > limit {
			t.Fatalf("page %d has %d characters, limit %d: %q", i, n, limit, page)
		}
		out = append(out, page)
		if done {
			return out
		}
		if !strings.HasSuffix(page, "\n98. More") {
			t.Fatalf("page %d %q lacks the more option", i, page)
		}
		body, opts = rest, restOpts
	}
}

func TestCutPage(t *testing.T) {
	tests := []struct {
		name       string
		body, opts string
		limit      int
		want       []string
	}{
		{"fits", "Hello", "1. Yes\n2. No", 40, []string{"Hello\n1. Yes\n2. No"}},
		{"exactly fits", "abcd", "12345", 10, []string{"abcd\n12345"}},
		{"options move to their own page", "abcdefgh", "1. Yes 2. No", 20,
			[]string{"abcdefgh\n98. More", "1. Yes 2. No"}},
		{"breaks at a space", "a b c d e f g", "1. Yes", 19,
			[]string{"a b c d e\n98. More", "f g\n1. Yes"}},
		{"breaks at a line end", "line one\nline two\nline three", "", 27,
			[]string{"line one\nline two\n98. More", "line three"}},
		{"cuts a long word", strings.Repeat("x", 30), "", 20,
			[]string{strings.Repeat("x", 11) + "\n98. More", strings.Repeat("x", 19)}},
		{"counts characters, not bytes", strings.Repeat("é", 25), "", 20,
			[]string{strings.Repeat("é", 11) + "\n98. More", strings.Repeat("é", 14)}},
		{"options longer than a page", "", strings.TrimSpace(strings.Repeat("o ", 15)), 20,
			[]string{"o o o o o\n98. More", "o o o o o o o o o o"}},
		{"long body and long options", strings.Repeat("b", 15), strings.Repeat("o", 25), 20,
			[]string{strings.Repeat("b", 11) + "\n98. More", "bbbb\n" + strings.Repeat("o", 6) + "\n98. More", strings.Repeat("o", 19)}},
		{"empty", "", "", 20, []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pages(t, tt.body, tt.opts, tt.limit)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("pages %q, want %q", got, tt.want)
			}
		})
	}
}

func TestScreenString(t *testing.T) {
	tests := []struct {
		s    Screen
		want string
	}{
		{Screen{Text: "menu"}, "CON menu"},
		{Screen{Text: "bye", End: true}, "END bye"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Fatalf("%+v: %q, want %q", tt.s, got, tt.want)
		}
	}
}

// FuzzCutPage checks that paging ends, that every page fits and that the pages carry all
// of the content (but for the spaces and line ends they were cut at).
func FuzzCutPage(f *testing.F) {
	f.Add("Last payments:\nAB 21/11 -10.00 Mama Mboga (55501) completed", "1. Yes\n2. No", 30)
	f.Add(strings.Repeat("word ", 100), "", 178)
	f.Add("", strings.Repeat("o", 300), 178)
	f.Fuzz(func(t *testing.T, body, opts string, limit int) {
		if limit < 20 || limit > 400 || !utf8.ValidString(body) || !utf8.ValidString(opts) {
			return
		}
		got := pages(t, body, opts, limit)
		var joined []string
		for _, p := range got {
			joined = append(joined, strings.TrimSuffix(p, "\n98. More"))
		}
		if nospace(strings.Join(joined, "")) != nospace(joinLines(body, opts)) {
			t.Fatalf("pages %q lose content of %q + %q", got, body, opts)
		}
	})
}

func nospace(s string) string { return strings.Join(strings.Fields(s), "") }
