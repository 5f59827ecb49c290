package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"
)

// Disk loss (-disk-loss): the switch streams its database to a file replica; each round
// pays under load, kills the switch with SIGKILL, deletes its data folder (database,
// WAL, Litestream's local state: the disk is gone), restores the database from the
// replica with "payswitch restore", starts the switch again and checks:
//
//   - the books balance, and export + verify accept them;
//   - every payment whose receipt reached the phone more than -max-lag before the kill
//     is there, completed, once; every deposit acknowledged by then is there;
//   - exactly once still holds for what survived: each wallet's posted balance is its
//     deposit less its completed payments, held is its pending ones, each merchant's
//     is the sum paid to it, and only payments whose code the phone sent completed.
//
// A payment acknowledged within -max-lag of the kill may be missing (the replica had not
// received it yet): the round line counts them (lost_acked) and says how old the oldest
// of them was (lost_window), which is the loss the replica's lag allows. It also prints
// the restore's time and the time until the switch was healthy again (RTO).
const (
	invRPO = "every payment acknowledged more than the replica's documented lag before the disk was lost is restored"
	// diskPayments caps one phone's payments in a round, under fraud.requests_per_minute.
	diskPayments = 8
)

// replicaDir is where the disk-loss mode's replica lives: outside the data folder.
func replicaDir(dir string) string { return filepath.Join(dir, "replica") }

// ack is a payment whose receipt the phone got: the switch acknowledged it.
type ack struct {
	id     string
	amount int64
	at     time.Time
}

// diskPhone is a wallet that pays its merchant again and again, each time with the
// right code, and remembers what the switch acknowledged.
type diskPhone struct {
	msisdn, account, ref string
	deposit              int64
	depositAt            time.Time
	merchant             *merchant
	mu                   sync.Mutex
	acks                 []ack
	codeSent             map[string]bool // payments whose code the phone sent
}

func (p *diskPhone) payLoop(ctx context.Context, d *driver, amounts []int64, pauses []time.Duration) {
	for i, amount := range amounts {
		select {
		case <-time.After(pauses[i]):
		case <-ctx.Done():
			return
		}
		mark := d.mail.mark(p.msisdn)
		if err := d.send(ctx, p.msisdn, fmt.Sprintf("PAY %s %s", p.merchant.code, amountText(amount))); err != nil {
			return
		}
		var id, code string
		_, _, err := d.mail.await(ctx, p.msisdn, mark, d.timeout, func(t string) bool {
			var ok bool
			id, code, ok = otpOf(t, 6)
			return ok
		})
		if err != nil {
			return
		}
		mark = d.mail.mark(p.msisdn)
		p.mu.Lock()
		p.codeSent[id] = true
		p.mu.Unlock()
		if err := d.send(ctx, p.msisdn, code); err != nil {
			return
		}
		if _, _, err := d.mail.await(ctx, p.msisdn, mark, d.timeout, func(t string) bool { return isReceipt(t, id) }); err != nil {
			return
		}
		p.mu.Lock()
		p.acks = append(p.acks, ack{id: id, amount: amount, at: time.Now()})
		p.mu.Unlock()
	}
}

// runDiskLoss runs the -disk-loss rounds and the final check.
func (h *harness) runDiskLoss(ctx context.Context) error {
	var rto, worstLoss time.Duration
	var lost int
	for r := 1; r <= h.o.rounds; r++ {
		res, err := h.diskRound(ctx, r)
		if err != nil {
			return fmt.Errorf("disk-loss round %d: %w", r, err)
		}
		rto, worstLoss, lost = max(rto, res.rto), max(worstLoss, res.lostWindow), lost+res.lost
	}
	if err := h.checkLedger(ctx, "final"); err != nil {
		return err
	}
	if err := h.srv.stop(20 * time.Second); err != nil {
		fmt.Fprintf(h.errw, "crashtest: warning: %v\n", err)
	}
	if h.o.race && h.srv.raced() {
		return violated(invRace, "the race detector reported a data race; see %s", h.srv.logPath)
	}
	fmt.Fprintf(h.out, "crashtest: ok disk-loss seed=%d rounds=%d lost_acked=%d worst_lost_window=%s max_lag=%s worst_rto=%s elapsed=%s\n",
		h.o.seed, h.o.rounds, lost, worstLoss.Round(time.Millisecond), h.o.maxLag, rto.Round(time.Millisecond),
		time.Since(h.start).Round(time.Millisecond))
	return nil
}

type diskResult struct {
	rto, lostWindow time.Duration
	lost            int
}

func (h *harness) diskRound(ctx context.Context, r int) (diskResult, error) {
	var res diskResult
	m := &merchant{code: fmt.Sprint(60000 + r), msisdn: fmt.Sprintf("2541%08d", 500+r)}
	a, err := h.api.openAccount(ctx, "merchant", m.msisdn, m.code, fmt.Sprintf("Disk shop %d", r))
	if err != nil {
		return res, fmt.Errorf("open merchant: %w", err)
	}
	m.account = a.ID
	var phones []*diskPhone
	for i := range h.o.phones {
		p := &diskPhone{msisdn: fmt.Sprintf("2547%05d%03d", 500+r, i), merchant: m, codeSent: map[string]bool{},
			deposit: 5000000, ref: fmt.Sprintf("DISK-%d-%d", r, i)}
		acc, err := h.api.openAccount(ctx, "wallet", p.msisdn, "", fmt.Sprintf("Disk phone %d-%d", r, i))
		if err != nil {
			return res, fmt.Errorf("open wallet: %w", err)
		}
		p.account = acc.ID
		if _, err := h.api.Deposit(ctx, p.account, p.deposit, p.ref); err != nil {
			return res, fmt.Errorf("deposit: %w", err)
		}
		p.depositAt = time.Now()
		phones = append(phones, p)
	}

	// Pay until the kill; the kill comes late enough that some payments are older
	// than the lag the replica is allowed.
	// Each phone's payments are spread over the time to the kill, so that payments are
	// under way when it comes.
	delay := 2*h.o.maxLag + time.Duration(h.rng.Int64N(int64(time.Second)))
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range phones {
		amounts := make([]int64, diskPayments)
		pauses := make([]time.Duration, diskPayments)
		for i := range amounts {
			amounts[i] = int64(10+h.rng.IntN(490)) * 100
			pauses[i] = time.Duration(h.rng.Int64N(int64(2 * delay / diskPayments)))
		}
		wg.Go(func() { p.payLoop(tctx, h.drv, amounts, pauses) })
	}
	var maxSeen time.Duration
	lagDone := make(chan struct{})
	go func() { defer close(lagDone); maxSeen = h.watchLag(tctx) }()
	select {
	case <-time.After(delay):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	if err := h.srv.kill(); err != nil {
		return res, violated(invSwitchUp, "%v", err)
	}
	killed := time.Now()
	cancel()
	wg.Wait()
	<-lagDone

	// The disk is gone: the data folder with it.
	data := filepath.Dir(h.dbPath)
	if err := os.RemoveAll(data); err != nil {
		return res, err
	}
	start := time.Now()
	url := "file://" + replicaDir(h.dir)
	out, err := h.srv.command(ctx, "restore", "-config", h.srv.config, "-from", url)
	if err != nil {
		return res, violated(invRPO, "payswitch restore -from %s: %v\n%s", url, err, out)
	}
	restoreTook := time.Since(start)
	seq := regexp.MustCompile(`last seq (\d+)`).FindStringSubmatch(out)
	if err := h.srv.start(); err != nil {
		return res, err
	}
	if err := h.srv.waitHealthy(ctx, healthWait); err != nil {
		return res, violated(invSwitchUp, "start after the restore: %v", err)
	}
	res.rto = time.Since(start)
	h.outages = append(h.outages, outage{killed, time.Now()})

	if err := h.checkLedger(ctx, fmt.Sprintf("disk-%d", r)); err != nil {
		return res, err
	}
	cutoff := killed.Add(-h.o.maxLag)
	var acked, old int
	var merchantPaid int64
	for _, p := range phones {
		n, o, paid, lostAcks, err := h.checkDiskPhone(ctx, p, cutoff)
		if err != nil {
			return res, err
		}
		acked, old, merchantPaid = acked+n, old+o, merchantPaid+paid
		for _, a := range lostAcks {
			res.lost++
			res.lostWindow = max(res.lostWindow, killed.Sub(a.at))
		}
	}
	macct, err := h.api.Account(ctx, m.account)
	if err != nil {
		return res, err
	}
	if macct.Balance.Posted != merchantPaid {
		return res, violated(invExactlyOnce, "merchant %s: posted %d, its phones' completed payments sum to %d", m.code, macct.Balance.Posted, merchantPaid)
	}
	restoredSeq := "?"
	if seq != nil {
		restoredSeq = seq[1]
	}
	fmt.Fprintf(h.out, "round=%d disk-loss kill_at=%s acked=%d acked_before_cutoff=%d lost_acked=%d lost_window=%s max_lag_seen=%s restored_seq=%s restore=%s rto=%s ok\n",
		r, delay.Round(time.Millisecond), acked, old, res.lost, res.lostWindow.Round(time.Millisecond), maxSeen.Round(time.Millisecond),
		restoredSeq, restoreTook.Round(time.Millisecond), res.rto.Round(time.Millisecond))
	return res, nil
}

// checkDiskPhone checks one wallet after a restore: what was acknowledged before cutoff
// is there and completed; posted, held and completed payments agree. It returns the
// acknowledged payments, those before cutoff, the sum of completed payments to the
// merchant, and the acknowledged payments that were lost.
func (h *harness) checkDiskPhone(ctx context.Context, p *diskPhone, cutoff time.Time) (int, int, int64, []ack, error) {
	pays, err := h.api.Payments(ctx, p.msisdn)
	if err != nil {
		return 0, 0, 0, nil, err
	}
	acct, err := h.api.Account(ctx, p.account)
	if err != nil {
		return 0, 0, 0, nil, err
	}
	byID := map[string]payment{}
	var deposits, completed, pending int64
	for _, pay := range pays {
		byID[pay.ID] = pay
		switch {
		case pay.Type == "deposit" && pay.State == "completed":
			deposits += pay.Amount
		case pay.Type != "merchant_payment":
		case pay.State == "completed":
			if !p.codeSent[pay.ID] {
				return 0, 0, 0, nil, violated(invExactlyOnce, "%s: payment %s completed, but the phone never sent its code", p.msisdn, pay.ID)
			}
			completed += pay.Amount
		case pay.State == "pending_otp":
			pending += pay.Amount
		}
	}
	if p.depositAt.Before(cutoff) && deposits != p.deposit {
		return 0, 0, 0, nil, violated(invRPO, "%s: deposit %s of %d acknowledged at %s, restored deposits %d",
			p.msisdn, p.ref, p.deposit, p.depositAt.Format("15:04:05.000"), deposits)
	}
	if acct.Balance.Posted != deposits-completed {
		return 0, 0, 0, nil, violated(invExactlyOnce, "%s: posted %d, want deposits %d less completed payments %d:\n%s",
			p.msisdn, acct.Balance.Posted, deposits, completed, describe(pays))
	}
	if acct.Balance.Held != pending {
		return 0, 0, 0, nil, violated(invHolds, "%s: held %d, pending payments %d", p.msisdn, acct.Balance.Held, pending)
	}
	var old int
	var lost []ack
	for _, a := range p.acks {
		pay, ok := byID[a.id]
		if a.at.Before(cutoff) {
			old++
			if !ok || pay.State != "completed" || pay.Amount != a.amount {
				return 0, 0, 0, nil, violated(invRPO, "%s: payment %s (%d) acknowledged at %s, %s before the cutoff, restored as %+v (found %v)",
					p.msisdn, a.id, a.amount, a.at.Format("15:04:05.000"), cutoff.Sub(a.at).Round(time.Millisecond), pay, ok)
			}
		} else if !ok || pay.State != "completed" {
			lost = append(lost, a)
		}
	}
	return len(p.acks), old, completed, lost, nil
}

// watchLag polls /healthz until ctx ends and returns the largest replica lag it saw.
func (h *harness) watchLag(ctx context.Context) time.Duration {
	var worst time.Duration
	for {
		var hz struct {
			Replicas []struct {
				LagSeconds float64 `json:"lag_seconds"`
			} `json:"replicas"`
		}
		if err := h.api.Do(ctx, http.MethodGet, "/healthz", nil, http.StatusOK, &hz); err == nil {
			for _, r := range hz.Replicas {
				worst = max(worst, time.Duration(r.LagSeconds*float64(time.Second)))
			}
		}
		select {
		case <-ctx.Done():
			return worst
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// replicaConfig is the database.replicas entry of the disk-loss mode.
func replicaConfig(dir string, sync time.Duration) string {
	return fmt.Sprintf("  replicas:\n    - url: %q\n      sync_interval: %s\n", "file://"+replicaDir(dir), sync)
}
