package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/receiptspool"
	"github.com/payswitch/payswitch/smpp"
)

// spoolDrainTimeout bounds how long Close waits for the spooled receipts to be applied
// before it stops the spool; what is left is applied at the next start.
const spoolDrainTimeout = 3 * time.Second

// openReceiptSpool opens the spool of delivery receipts and MOs (database.receipt_spool
// and database.mo_spool, SQLite only) beside the database and publishes its figures;
// a.spool stays nil without one. A spool that a process left with records in it is
// opened even when both are now off, so that what it acknowledged is still applied.
func (a *app) openReceiptSpool(ctx context.Context, secret []byte) error {
	d := a.cfg.Database
	if d.Postgres() || !d.SpoolsReceipts() && !d.SpoolsMOs() && !spoolLeft(d.ReceiptSpoolPath()) {
		return nil
	}
	mos, err := newMOSealer(secret)
	if err != nil {
		return err
	}
	// A database that may lose its last commits to a crash of the machine
	// (synchronous NORMAL or OFF) does not need the receipts to outlive one either.
	noSync := d.Synchronous != "FULL" && d.Synchronous != "EXTRA"
	// The MOs' keys start above every key the engine kept, whatever became of the
	// segments that held them (see applySpooledMO).
	last, err := a.engine.LastDecidedKey(ctx)
	if err != nil {
		return fmt.Errorf("mo spool: %w", err)
	}
	s, err := receiptspool.Open(receiptspool.Config{Dir: d.ReceiptSpoolPath(), NoSync: noSync,
		FirstSegment: receiptspool.KeySegment(last) + 1})
	if err != nil {
		return err
	}
	a.spool, a.moSealer = s, mos
	if n := s.Depth(); n > 0 {
		a.log.Info().Int64("receipts", n-s.MODepth()).Int64("mos", s.MODepth()).
			Msg("delivery receipts and MOs spooled by the last process are being applied")
	}
	a.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "payswitch_receipt_spool_depth",
			Help: "Delivery receipts acknowledged to the SMSC and not yet applied to the database."},
			func() float64 { return float64(s.Depth() - s.MODepth()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "payswitch_receipt_spool_applied_total",
			Help: "Delivery receipts applied from the spool."},
			func() float64 { applied, _, _ := s.Counts(); return float64(applied - s.AppliedMOs()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "payswitch_mo_spool_depth",
			Help: "MOs acknowledged to the SMSC and not yet decided on."},
			func() float64 { return float64(s.MODepth()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "payswitch_mo_spool_applied_total",
			Help: "MOs decided on from the spool."},
			func() float64 { return float64(s.AppliedMOs()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "payswitch_receipt_spool_retries_total",
			Help: "Failed applications of a spooled receipt or MO, each tried again."},
			func() float64 { _, retried, _ := s.Counts(); return float64(retried) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "payswitch_receipt_spool_refused_total",
			Help: "Delivery receipts and MOs refused with a temporary error because the spool was full " +
				"or held too many MOs of their link."},
			func() float64 { _, _, refused := s.Counts(); return float64(refused) }),
	)
	return nil
}

// spoolLeft reports whether dir holds files, as a spool a process left does.
func spoolLeft(dir string) bool {
	entries, err := os.ReadDir(dir)
	return err == nil && len(entries) > 0
}

// runReceiptSpool applies the spooled receipts until ctx is done, each as the receipt's
// own deliver_sm did before the spool: to its message, with what it means for the
// engine (deliveries, codeDeliveries) in the same write; and the spooled MOs, each as
// its deliver_sm did (applySpooledMO).
func (a *app) runReceiptSpool(ctx context.Context, deliveries outbox.ReceiptFunc) {
	a.loop(func() { a.forgetDecidedMOs(ctx) })
	a.spool.Run(ctx, receiptspool.Appliers{
		Receipt: func(ctx context.Context, r receiptspool.Receipt) error {
			_, _, err := a.outbox.ReceiptThen(ctx, r.Link, r.MessageID, r.Status, deliveries)
			if err != nil && ctx.Err() == nil {
				a.log.Warn().Err(err).Str("link", r.Link).Msg("a spooled delivery receipt could not be applied; trying again")
			}
			return err
		},
		MO: a.applySpooledMO,
	})
}

// drainReceiptSpool gives the spooled receipts a moment to be applied, once nothing
// more can arrive (the links and the gateway are closed) and before the loops stop.
func (a *app) drainReceiptSpool() {
	if a.spool == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), spoolDrainTimeout)
	defer cancel()
	if err := a.spool.Drain(ctx); err != nil {
		a.log.Info().Int64("receipts", a.spool.Depth()-a.spool.MODepth()).Int64("mos", a.spool.MODepth()).
			Msg("delivery receipts and MOs left spooled for the next start")
	}
}

// spoolReceipt is moHandler.HandleReceipt with a spool: the receipt is durable when
// Put returns, and applied shortly after by runReceiptSpool.
func spoolReceipt(ctx context.Context, s *receiptspool.Spool, r smpp.Receipt) error {
	if err := s.Put(ctx, receiptspool.Receipt{Link: r.Link, MessageID: r.MessageID, Status: r.Status}); err != nil {
		return fmt.Errorf("delivery receipt: %w", err)
	}
	return nil
}
