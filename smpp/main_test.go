package smpp_test

import (
	"os"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"
)

// TestMain lets the tests that run on both drivers start a throwaway PostgreSQL.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
