package config

import (
	"strings"
	"testing"
	"time"
)

func TestEscrowConfig(t *testing.T) {
	if c := mustParse(t, minimal, nil); c.Escrow.ReleaseAfter != 168*time.Hour {
		t.Fatalf("left out: %v, want 168h", c.Escrow.ReleaseAfter)
	}
	if c := mustParse(t, minimal+"escrow: {release_after: 48h}\n", nil); c.Escrow.ReleaseAfter != 48*time.Hour {
		t.Fatalf("set: %v, want 48h", c.Escrow.ReleaseAfter)
	}
	c, err := Load("../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Escrow.ReleaseAfter != DefaultEscrowReleaseAfter {
		t.Fatalf("config.yaml shows %v, the default is %v", c.Escrow.ReleaseAfter, DefaultEscrowReleaseAfter)
	}
	for _, tc := range []struct{ name, yaml, msg string }{
		{"zero", "escrow: {release_after: 0s}\n", "more than 0"},
		{"negative", "escrow: {release_after: -1h}\n", "more than 0"},
		{"past a year", "escrow: {release_after: 8761h}\n", "at most 8760h"},
		{"unknown key", "escrow: {release_before: 1h}\n", "unknown key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(minimal+tc.yaml), nil)
			if err == nil || !strings.Contains(err.Error(), "config: escrow.") || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want escrow.… %s", err, tc.msg)
			}
		})
	}
}
