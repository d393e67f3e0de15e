package rollback

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// How numbers, times and series read on the pages.

// The sparkline's box, in SVG user units.
const (
	sparkW = 90.0
	sparkH = 18.0
)

// sparkline draws the samples as an SVG path, broken where one is missing,
// and the baseline as a path of its own, in one scale.
func sparkline(samples Series, pre *float64) (line, base string) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, x := range samples {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			lo, hi = min(lo, x), max(hi, x)
		}
	}
	if pre != nil {
		lo, hi = min(lo, *pre), max(hi, *pre)
	}
	if math.IsInf(lo, 0) {
		return "", ""
	}
	// A gauge that barely moves is drawn flat, not blown up to the box:
	// the scale spans at least a fifth of the values' size.
	if least := max(math.Abs(hi), math.Abs(lo)) / 5; hi-lo < least || hi == lo {
		mid, half := (hi+lo)/2, max(least, 1)/2
		lo, hi = mid-half, mid+half
	}
	y := func(x float64) string {
		return strconv.FormatFloat(1+(sparkH-2)*(hi-x)/(hi-lo), 'f', 1, 64)
	}
	step := sparkW
	if len(samples) > 1 {
		step = sparkW / float64(len(samples)-1)
	}
	missing := func(i int) bool {
		return i < 0 || i >= len(samples) || math.IsNaN(samples[i]) || math.IsInf(samples[i], 0)
	}
	var b strings.Builder
	for i, x := range samples {
		if missing(i) {
			continue
		}
		at := float64(i) * step
		switch {
		case missing(i-1) && missing(i+1):
			// A reading alone between gaps is a tick, not an invisible move.
			fmt.Fprintf(&b, "M%s %s h6 ", strconv.FormatFloat(min(max(at-3, -1), sparkW-5), 'f', 1, 64), y(x))
		case missing(i - 1):
			fmt.Fprintf(&b, "M%s %s ", strconv.FormatFloat(at, 'f', 1, 64), y(x))
		default:
			fmt.Fprintf(&b, "L%s %s ", strconv.FormatFloat(at, 'f', 1, 64), y(x))
		}
	}
	if pre != nil {
		base = fmt.Sprintf("M0 %s L%v %s", y(*pre), sparkW, y(*pre))
	}
	return strings.TrimSpace(b.String()), base
}

func when(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return span(time.Since(t)) + " ago"
}

// span writes a duration as a person reads it at a glance: 42s, 3m12s, 5h4m, 2d3h.
func span(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

// round3 rounds x to three significant digits: an interval's ends are not
// known any better.
func round3(x float64) float64 {
	if x == 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	p := math.Pow(10, 2-math.Floor(math.Log10(math.Abs(x))))
	return math.Round(x*p) / p
}
