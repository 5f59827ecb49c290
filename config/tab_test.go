package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestTabInIndentationIsExplained(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		line       int
	}{
		{"tab before a key", minimal + "ussd:\n\tservice_code: \"*384#\"\n", 7},
		{"tab before a list item", minimal + "smpp:\n  links:\n\t- name: a\n", 8},
		{"tab after spaces", minimal + "otp:\n  digits: 6\n \tttl: 5m\n", 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			want := "config: line " + strconv.Itoa(tc.line) + ": found a tab character; YAML indents with spaces, not tabs"
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("got %v, want %q", err, want)
			}
		})
	}
	// A tab that yaml.v3 takes in its stride gets no hint: here it only separates a
	// key from its value.
	if _, err := Parse([]byte(minimal+"otp:\n  digits:\t6\n"), nil); err != nil {
		t.Fatalf("tab after a colon: %v", err)
	}
}
