package console

import (
	"sort"
	"strconv"
	"time"
)

// chart is the overview's bar chart of payments per minute over the last hour, drawn as
// SVG on the server: no script, nothing for the CSP to allow. Each minute is a stack of
// bars, one per state, coloured by the stylesheet (class s-<state>).
type chart struct {
	Width, Height int
	Bars          []bar
	Max           int // the tallest minute's count
	Ticks         []tick
	States        []string // the states present, for the legend
}

type bar struct {
	X, Y, W, H int
	State      string
	Title      string // the tooltip: minute, state, count
}

type tick struct {
	X     int
	Label string
}

type channelCount struct {
	Channel string
	States  map[string]int
	Total   int
}

const (
	chartWidth   = 720
	chartHeight  = 160
	chartMinutes = 60
)

// stateOrder stacks the states from the bottom up.
var stateOrder = []string{"completed", "pending_otp", "topup_pending", "reversed", "failed", "expired", "cancelled"}

func stateRank(s string) int {
	for i, o := range stateOrder {
		if o == s {
			return i
		}
	}
	return len(stateOrder)
}

func buildChart(rows []ActivityRow, since time.Time, loc *time.Location) chart {
	c := chart{Width: chartWidth, Height: chartHeight}
	perMinute := make([]map[string]int, chartMinutes)
	seen := map[string]bool{}
	for _, r := range rows {
		i := int(r.Minute.Sub(since) / time.Minute)
		if i < 0 || i >= chartMinutes {
			continue
		}
		if perMinute[i] == nil {
			perMinute[i] = map[string]int{}
		}
		perMinute[i][r.State] += r.Count
		seen[r.State] = true
	}
	for _, m := range perMinute {
		total := 0
		for _, n := range m {
			total += n
		}
		c.Max = max(c.Max, total)
	}
	for s := range seen {
		c.States = append(c.States, s)
	}
	sort.Slice(c.States, func(i, j int) bool {
		ri, rj := stateRank(c.States[i]), stateRank(c.States[j])
		return ri < rj || ri == rj && c.States[i] < c.States[j]
	})
	slot := chartWidth / chartMinutes
	scale := 1.0
	if c.Max > 0 {
		scale = float64(chartHeight-10) / float64(c.Max)
	}
	for i, m := range perMinute {
		y := chartHeight
		minute := since.Add(time.Duration(i) * time.Minute).In(loc)
		for _, st := range c.States {
			n := m[st]
			if n == 0 {
				continue
			}
			h := max(1, int(float64(n)*scale+0.5))
			y -= h
			c.Bars = append(c.Bars, bar{X: i*slot + 1, Y: y, W: slot - 2, H: h, State: st,
				Title: minute.Format("15:04") + " " + st + ": " + strconv.Itoa(n)})
		}
		if i%10 == 0 {
			c.Ticks = append(c.Ticks, tick{X: i * slot, Label: minute.Format("15:04")})
		}
	}
	return c
}

// byChannel totals the hour's payments per channel and state, for the table beside the chart.
func byChannel(rows []ActivityRow) []channelCount {
	m := map[string]*channelCount{}
	for _, r := range rows {
		cc := m[r.Channel]
		if cc == nil {
			cc = &channelCount{Channel: r.Channel, States: map[string]int{}}
			m[r.Channel] = cc
		}
		cc.States[r.State] += r.Count
		cc.Total += r.Count
	}
	var out []channelCount
	for _, cc := range m {
		out = append(out, *cc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Channel < out[j].Channel })
	return out
}
