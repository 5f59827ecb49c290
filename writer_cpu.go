package main

import (
	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/config"
)

// writerThreadHook is the store's OnWriterThread for a serve on d: on SQLite with
// database.writer_cpu on, it gives the writer's thread a CPU of its own
// (giveWriterACPU) and logs where everything runs. nil when there is nothing to do: off
// (the default), or PostgreSQL (no single writer).
//
// Why: the writer is the one serial step of every payment. Sharing a CPU with the
// network handlers, the HTTP deliveries and the sender, it ran the same statements in
// more CPU time. Why off by default: on a 2-CPU machine the rest of serve then has one
// CPU, which holds it back as the load rises (README, Performance).
func writerThreadHook(d config.Database, log zerolog.Logger) func() {
	if d.Postgres() || d.WriterCPU != config.WriterCPUOn {
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
