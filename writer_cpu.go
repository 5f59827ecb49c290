package main

import (
	"testing"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/config"
)

// writerThreadHook is the store's OnWriterThread for a serve on d: on SQLite with
// database.writer_cpu auto, it gives the writer's thread a CPU of its own
// (giveWriterACPU) and logs where everything runs. nil when there is nothing to do: off,
// PostgreSQL (no single writer), or a test binary, whose threads many tests share.
//
// Why: the writer is the one serial step of every payment. Sharing a CPU with the
// network handlers, the HTTP deliveries and the sender, it ran the same statements
// slower (their caches and time shared); on a CPU of its own it spent less time on
// each, and serve less CPU per payment (README, Performance).
func writerThreadHook(d config.Database, log zerolog.Logger) func() {
	if d.Postgres() || d.WriterCPU != config.WriterCPUAuto || testing.Testing() {
		return nil
	}
	return func() {
		cpu, rest, err := giveWriterACPU()
		switch {
		case err != nil:
			log.Warn().Err(err).Msg("the store's writer could not have a CPU of its own; it shares them all (database.writer_cpu)")
		case cpu < 0:
			log.Info().Msg("one CPU only: the store's writer shares it (database.writer_cpu)")
		default:
			log.Info().Int("writer_cpu", cpu).Ints("other_cpus", rest).Msg("the store's writer has a CPU of its own (database.writer_cpu)")
		}
	}
}
