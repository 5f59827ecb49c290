package payswitch_test

import (
	"os"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"
)

// TestMain runs the tests through pgtest.Main, which stops the PostgreSQL server that
// the tests on both drivers start.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
