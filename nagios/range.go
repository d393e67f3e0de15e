package nagios

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Range is a threshold range as the Monitoring Plugins development guidelines
// define it. A value alerts when it lies outside [Start, End], or inside when
// Inside is set (the "@" prefix). Both ends are inclusive; an infinite end is
// written as math.Inf.
type Range struct {
	Start, End float64
	Inside     bool
}

// RangeError says which range text was wrong, and for which flag.
type RangeError struct {
	Flag   string // the option the text came from, such as "-w"; may be empty
	Text   string
	Reason string
}

func (e *RangeError) Error() string {
	if e.Flag == "" {
		return fmt.Sprintf("invalid range %q: %s", e.Text, e.Reason)
	}
	return fmt.Sprintf("invalid range %q for %s: %s", e.Text, e.Flag, e.Reason)
}

// ParseRange reads a range in the guidelines' syntax:
//
//	10      alert if < 0 or > 10
//	10:     alert if < 10
//	~:10    alert if > 10
//	10:20   alert if < 10 or > 20
//	@10:20  alert if >= 10 and <= 20
func ParseRange(text string) (Range, error) {
	fail := func(reason string) (Range, error) {
		return Range{}, &RangeError{Text: text, Reason: reason}
	}
	s := strings.TrimSpace(text)
	r := Range{Start: 0, End: math.Inf(1)}
	if strings.HasPrefix(s, "@") {
		r.Inside = true
		s = s[1:]
	}
	if s == "" {
		return fail("empty")
	}
	startText, endText, hasColon := strings.Cut(s, ":")
	if !hasColon {
		startText, endText = "", s
	}
	switch startText {
	case "~":
		r.Start = math.Inf(-1)
	case "":
	default:
		v, err := parseBound(startText)
		if err != nil {
			return fail("start " + err.Error())
		}
		r.Start = v
	}
	if endText != "" {
		v, err := parseBound(endText)
		if err != nil {
			return fail("end " + err.Error())
		}
		r.End = v
	}
	if r.Start > r.End {
		return fail("start > end")
	}
	return r, nil
}

// ParseRangeFlag is ParseRange for the value of a command-line option; the
// error names the option.
func ParseRangeFlag(flag, text string) (Range, error) {
	r, err := ParseRange(text)
	if re, ok := err.(*RangeError); ok {
		re.Flag = flag
	}
	return r, err
}

func parseBound(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return v, nil
}

// MarshalText writes r in the guidelines' syntax, so ranges read well in
// JSON and YAML (and infinite ends survive, which JSON numbers cannot hold).
func (r Range) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads a range in the guidelines' syntax.
func (r *Range) UnmarshalText(b []byte) error {
	v, err := ParseRange(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Alerts reports whether v raises an alert against r.
func (r Range) Alerts(v float64) bool {
	within := r.Start <= v && v <= r.End
	return within == r.Inside
}

// String writes r in the guidelines' syntax, in its shortest form.
func (r Range) String() string { return r.Format(-1) }

// Format writes r with the given number of decimals (-1: shortest form), as
// plugins that print thresholds with a fixed precision do.
func (r Range) Format(decimals int) string {
	var b strings.Builder
	if r.Inside {
		b.WriteByte('@')
	}
	startInf := math.IsInf(r.Start, -1)
	endInf := math.IsInf(r.End, 1)
	switch {
	case r.Start == 0 && !endInf && !r.Inside:
		// "10" is short for "0:10".
		b.WriteString(FormatNumber(r.End, decimals))
		return b.String()
	case startInf:
		b.WriteByte('~')
	default:
		b.WriteString(FormatNumber(r.Start, decimals))
	}
	b.WriteByte(':')
	if !endInf {
		b.WriteString(FormatNumber(r.End, decimals))
	}
	return b.String()
}

// FormatNumber writes v with the given number of decimals, or in its
// shortest exact form when decimals is negative.
func FormatNumber(v float64, decimals int) string {
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

// Thresholds pairs a warning and a critical range; either may be absent.
type Thresholds struct {
	Warn, Crit *Range
}

// ParseThresholds reads the values of a check's -w and -c options; an empty
// text means that threshold is not set.
func ParseThresholds(warn, crit string) (Thresholds, error) {
	var t Thresholds
	for _, f := range []struct {
		flag, text string
		dst        **Range
	}{{"-w", warn, &t.Warn}, {"-c", crit, &t.Crit}} {
		if f.text == "" {
			continue
		}
		r, err := ParseRangeFlag(f.flag, f.text)
		if err != nil {
			return Thresholds{}, err
		}
		*f.dst = &r
	}
	return t, nil
}

// State tests v against the critical range first, then the warning range.
func (t Thresholds) State(v float64) State {
	switch {
	case t.Crit != nil && t.Crit.Alerts(v):
		return Critical
	case t.Warn != nil && t.Warn.Alerts(v):
		return Warning
	}
	return OK
}
