package mask

import "testing"

func TestMSISDN(t *testing.T) {
	for in, want := range map[string]string{
		"254700000001":  "2547****001",
		"+254700000001": "+254****001",
		"2547****001":   "2547****001",
		"12345678":      "1234****678",
		"22333":         "22****",
		"1234567":       "12****",
		"1234":          "****",
		"":              "",
		"٢٥٤٧٠٠٠٠٠٠٠١":  "٢٥٤٧****٠٠١",
	} {
		if got := MSISDN(in); got != want {
			t.Errorf("MSISDN(%q) = %q, want %q", in, got, want)
		}
	}
}
