package smscsim

import "time"

// Latency is a histogram of durations: 0.1 ms buckets up to 100 ms, 1 ms buckets up to
// 2 s, and one bucket for everything longer. It is what a load generator needs to
// report percentiles over a run without keeping every sample.
type Latency struct {
	counts [latencyBuckets]uint64
}

const (
	fineBuckets    = 1000 // 0.1 ms each: up to 100 ms
	coarseBuckets  = 1900 // 1 ms each: 100 ms to 2 s
	latencyBuckets = fineBuckets + coarseBuckets + 1
)

func latencyBucket(d time.Duration) int {
	switch {
	case d < 0:
		return 0
	case d < 100*time.Millisecond:
		return int(d / (100 * time.Microsecond))
	case d < 2*time.Second:
		return fineBuckets + int((d-100*time.Millisecond)/time.Millisecond)
	default:
		return latencyBuckets - 1
	}
}

// bucketTop is the longest duration bucket i holds (2 s for the last one, which holds
// more).
func bucketTop(i int) time.Duration {
	if i >= latencyBuckets-1 {
		return 2 * time.Second
	}
	if i < fineBuckets {
		return time.Duration(i+1) * 100 * time.Microsecond
	}
	return 100*time.Millisecond + time.Duration(i-fineBuckets+1)*time.Millisecond
}

// Add counts d.
func (l *Latency) Add(d time.Duration) { l.counts[latencyBucket(d)]++ }

// Count is how many durations l holds.
func (l Latency) Count() uint64 {
	var n uint64
	for _, c := range l.counts {
		n += c
	}
	return n
}

// Plus is l and o together.
func (l Latency) Plus(o Latency) Latency {
	for i := range l.counts {
		l.counts[i] += o.counts[i]
	}
	return l
}

// Since is what l holds beyond earlier, a reading of the same histogram taken before.
func (l Latency) Since(earlier Latency) Latency {
	for i := range l.counts {
		l.counts[i] -= earlier.counts[i]
	}
	return l
}

// Quantile is the duration under which a fraction q of l's durations fall, to its
// bucket's width (the top of the bucket that holds it); 0 when l is empty.
func (l Latency) Quantile(q float64) time.Duration {
	n := l.Count()
	if n == 0 {
		return 0
	}
	want := uint64(q*float64(n) + 0.5)
	want = max(min(want, n), 1)
	var seen uint64
	for i, c := range l.counts {
		if seen += c; seen >= want {
			return bucketTop(i)
		}
	}
	return bucketTop(latencyBuckets - 1)
}

// DeliveryTimes is how long one kind of delivery ("MO", "USSD", "receipt") took at the
// simulator: Wait, from being queued until its first deliver_sm went out (the window's
// queue, an ESME not bound); Ack, from each deliver_sm's sending until the ESME's
// deliver_sm_resp acknowledged it (which a switch sends once the message is durable).
type DeliveryTimes struct {
	Wait, Ack Latency
}

// DeliveryTimes returns, by kind, how long deliveries have taken since Start.
func (s *Sim) DeliveryTimes() map[string]DeliveryTimes {
	s.timesMu.Lock()
	defer s.timesMu.Unlock()
	out := make(map[string]DeliveryTimes, len(s.times))
	for k, t := range s.times {
		out[k] = *t
	}
	return out
}

// timed records one of d's durations: its wait when ack is false, else an acknowledged
// deliver_sm's round trip.
func (s *Sim) timed(d *delivery, ack bool, took time.Duration) {
	s.timesMu.Lock()
	defer s.timesMu.Unlock()
	if s.times == nil {
		s.times = map[string]*DeliveryTimes{}
	}
	t := s.times[d.what]
	if t == nil {
		t = &DeliveryTimes{}
		s.times[d.what] = t
	}
	if ack {
		t.Ack.Add(took)
	} else {
		t.Wait.Add(took)
	}
}
