package csvcell

import "testing"

func TestText(t *testing.T) {
	cases := []struct{ in, out string }{
		{`=HYPERLINK("http://x","a")`, `'=HYPERLINK("http://x","a")`},
		{"+254700000001", "'+254700000001"},
		{"-1500", "'-1500"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tx", "'\tx"},
		{"\rx", "'\rx"},
		{"'quoted", "''quoted"},
		{"Mama Mboga", "Mama Mboga"},
		{"a=b", "a=b"},
		{"", ""},
		{"cash:KES", "cash:KES"},
	}
	for _, c := range cases {
		got := Text(c.in)
		if got != c.out {
			t.Errorf("Text(%q) = %q, want %q", c.in, got, c.out)
		}
		if Risky(got) {
			t.Errorf("Text(%q) = %q is still risky", c.in, got)
		}
		if back := Value(got); back != c.in {
			t.Errorf("Value(Text(%q)) = %q", c.in, back)
		}
	}
}
