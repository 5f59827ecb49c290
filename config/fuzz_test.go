package config

import (
	"os"
	"testing"
)

// FuzzParse: any bytes as config.yaml give a Config or an error, never a panic, and a
// Config that Parse returns always passes Validate.
func FuzzParse(f *testing.F) {
	shipped, err := os.ReadFile("../config.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(shipped)
	f.Add([]byte("database: {path: x}\nhttp: {listen: '127.0.0.1:1'}\ncurrency: KES\nshortcode: '1'\n"))
	f.Add([]byte("currency: ${X:-KES}\n&a b: *a\n"))
	f.Add([]byte("smpp:\n  links:\n    - {name: a, tps: -1}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, func(string) string { return "" })
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate refuses: %v", err)
		}
	})
}
