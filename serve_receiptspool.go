package main

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/receiptspool"
	"github.com/payswitch/payswitch/smpp"
)

// spoolDrainTimeout bounds how long Close waits for the spooled receipts to be applied
// before it stops the spool; what is left is applied at the next start.
const spoolDrainTimeout = 3 * time.Second

// openReceiptSpool opens the delivery receipts' spool (database.receipt_spool, SQLite
// only) beside the database and publishes its figures; a.spool stays nil without one.
func (a *app) openReceiptSpool() error {
	d := a.cfg.Database
	if !d.SpoolsReceipts() {
		return nil
	}
	// A database that may lose its last commits to a crash of the machine
	// (synchronous NORMAL or OFF) does not need the receipts to outlive one either.
	noSync := d.Synchronous != "FULL" && d.Synchronous != "EXTRA"
	s, err := receiptspool.Open(receiptspool.Config{Dir: d.ReceiptSpoolPath(), NoSync: noSync})
	if err != nil {
		return err
	}
	a.spool = s
	if n := s.Depth(); n > 0 {
		a.log.Info().Int64("receipts", n).Msg("delivery receipts spooled by the last process are being applied")
	}
	a.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "payswitch_receipt_spool_depth",
			Help: "Delivery receipts acknowledged to the SMSC and not yet applied to the database."},
			func() float64 { return float64(s.Depth()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "payswitch_receipt_spool_applied_total",
			Help: "Delivery receipts applied from the spool."},
			func() float64 { applied, _, _ := s.Counts(); return float64(applied) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "payswitch_receipt_spool_retries_total",
			Help: "Failed applications of a spooled receipt, each tried again."},
			func() float64 { _, retried, _ := s.Counts(); return float64(retried) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "payswitch_receipt_spool_refused_total",
			Help: "Delivery receipts refused with a temporary error because the spool was full."},
			func() float64 { _, _, refused := s.Counts(); return float64(refused) }),
	)
	return nil
}

// runReceiptSpool applies the spooled receipts until ctx is done, each as the receipt's
// own deliver_sm did before the spool: to its message, with what it means for the
// engine (deliveries, codeDeliveries) in the same write.
func (a *app) runReceiptSpool(ctx context.Context, deliveries outbox.ReceiptFunc) {
	a.spool.Run(ctx, func(ctx context.Context, r receiptspool.Receipt) error {
		_, _, err := a.outbox.ReceiptThen(ctx, r.Link, r.MessageID, r.Status, deliveries)
		if err != nil && ctx.Err() == nil {
			a.log.Warn().Err(err).Str("link", r.Link).Msg("a spooled delivery receipt could not be applied; trying again")
		}
		return err
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
		a.log.Info().Int64("receipts", a.spool.Depth()).Msg("delivery receipts left spooled for the next start")
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
