package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testdata/audit/ok is an export written by an earlier build and kept as it is, so a
// change that would stop today's verifier from reading yesterday's exports shows here.
// testdata/audit/changed-amount is the same export with row 6's amount changed.
func TestVerifyCommandAcceptsAGoodExport(t *testing.T) {
	stdout, _, err := runCmd("verify", filepath.Join("testdata", "audit", "ok"))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	want, err := os.ReadFile(filepath.Join("testdata", "verify-ok.golden"))
	if err != nil {
		t.Fatal(err)
	}
	if stdout != string(want) {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
}

func TestVerifyCommandFailures(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"changed amount", []string{filepath.Join("testdata", "audit", "changed-amount")}, 1,
			"verify: journal.csv row 6 (seq 6): hash mismatch"},
		{"not an export", []string{t.TempDir()}, 1, "verify: manifest.json: cannot read"},
		{"no directory", nil, 2, "verify: want exactly one directory"},
		{"two directories", []string{"a", "b"}, 2, "verify: want exactly one directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, _, err := runCmd(append([]string{"verify"}, tt.args...)...)
			if exitCode(err) != tt.code {
				t.Errorf("exit code %d, want %d (%v)", exitCode(err), tt.code, err)
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error %v, want it to start %q", err, tt.want)
			}
			if strings.Contains(stdout, "OK") {
				t.Errorf("a failed verify printed %q", stdout)
			}
		})
	}
}
