package nagios

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Perf is one item of performance data: 'label'=value[UOM];warn;crit;min;max.
type Perf struct {
	Label string  `json:"label"`
	Value float64 `json:"value"`
	// Unknown is set when the plugin printed "U": it could not measure the value.
	Unknown bool `json:"unknown,omitempty"`
	// UOM is the unit: "", "s", "ms", "us", "%", "B", "KB", "MB", "GB", "TB", "c", or any other a plugin uses.
	UOM  string   `json:"uom,omitempty"`
	Warn *Range   `json:"warn,omitempty"`
	Crit *Range   `json:"crit,omitempty"`
	Min  *float64 `json:"min,omitempty"`
	Max  *float64 `json:"max,omitempty"`
	// Precision is how many decimals to print; 0 prints the shortest exact form.
	Precision int `json:"-"`
}

// Float returns a pointer to v, for Perf.Min and Perf.Max.
func Float(v float64) *float64 { return &v }

// String writes p as monitoring-plugins does: the label quoted only when it
// must be, empty fields kept between set ones and trailing ones dropped.
func (p Perf) String() string {
	var b strings.Builder
	b.WriteString(quoteLabel(p.Label))
	b.WriteByte('=')
	if p.Unknown {
		b.WriteByte('U')
	} else {
		b.WriteString(p.number(p.Value))
		b.WriteString(p.UOM)
	}
	fields := [4]string{}
	if p.Warn != nil {
		fields[0] = p.Warn.Format(p.decimals())
	}
	if p.Crit != nil {
		fields[1] = p.Crit.Format(p.decimals())
	}
	if p.Min != nil {
		fields[2] = p.number(*p.Min)
	}
	if p.Max != nil {
		fields[3] = p.number(*p.Max)
	}
	last := -1
	for i, f := range fields {
		if f != "" {
			last = i
		}
	}
	for _, f := range fields[:last+1] {
		b.WriteByte(';')
		b.WriteString(f)
	}
	return b.String()
}

func (p Perf) decimals() int {
	if p.Precision <= 0 {
		return -1
	}
	return p.Precision
}

func (p Perf) number(v float64) string { return FormatNumber(v, p.decimals()) }

func quoteLabel(label string) string {
	// A line break would end the status line in the middle of the perfdata.
	label = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\v' || r == '\f' {
			return ' '
		}
		return r
	}, label)
	if !strings.ContainsAny(label, "'= \t\r\n\v\f") {
		return label
	}
	return "'" + strings.ReplaceAll(label, "'", "''") + "'"
}

// FormatPerf writes items separated by single spaces.
func FormatPerf(items []Perf) string {
	parts := make([]string, len(items))
	for i, p := range items {
		parts[i] = p.String()
	}
	return strings.Join(parts, " ")
}

// ParsePerf reads the performance data a plugin printed. It reads every item
// it can: items it cannot read are skipped and reported together in the error.
func ParsePerf(s string) ([]Perf, error) {
	var items []Perf
	var errs []error
	for {
		s = strings.TrimLeft(s, " \t\r\n\v\f")
		if s == "" {
			break
		}
		var label string
		var err error
		label, s, err = cutLabel(s)
		if err != nil {
			errs = append(errs, err)
			break
		}
		var field string
		if i := strings.IndexAny(s, " \t\r\n\v\f"); i >= 0 {
			field, s = s[:i], s[i:]
		} else {
			field, s = s, ""
		}
		p, err := parsePerfValue(label, field)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		items = append(items, p)
	}
	return items, errors.Join(errs...)
}

// cutLabel reads a label and its '=', quoted or not, and returns the rest.
func cutLabel(s string) (label, rest string, err error) {
	if s[0] != '\'' {
		i := strings.IndexByte(s, '=')
		if i < 0 {
			return "", "", fmt.Errorf("perfdata %q: no '=' after the label", firstWord(s))
		}
		if j := strings.IndexAny(s[:i], " \t"); j >= 0 {
			return "", "", fmt.Errorf("perfdata %q: no '=' after the label", s[:j])
		}
		if i == 0 {
			return "", "", fmt.Errorf("perfdata %q: empty label", firstWord(s))
		}
		return s[:i], s[i+1:], nil
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != '\'' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '\'' {
			b.WriteByte('\'')
			i++
			continue
		}
		if i+1 >= len(s) || s[i+1] != '=' {
			return "", "", fmt.Errorf("perfdata label %q: no '=' after the closing quote", s[:i+1])
		}
		if b.Len() == 0 {
			return "", "", fmt.Errorf("perfdata %q: empty label", firstWord(s))
		}
		return b.String(), s[i+2:], nil
	}
	return "", "", fmt.Errorf("perfdata label %q: no closing quote", firstWord(s))
}

func firstWord(s string) string {
	if i := strings.IndexAny(s, " \t\r\n\v\f"); i >= 0 {
		return s[:i]
	}
	return s
}

func parsePerfValue(label, field string) (Perf, error) {
	p := Perf{Label: label}
	parts := strings.Split(field, ";")
	if len(parts) > 5 {
		return Perf{}, fmt.Errorf("perfdata %q: %d fields, at most 5", label, len(parts))
	}
	value := parts[0]
	if value == "U" {
		p.Unknown = true
	} else {
		n := numberPrefix(value)
		if n == 0 {
			return Perf{}, fmt.Errorf("perfdata %q: value %q is not a number", label, value)
		}
		v, err := strconv.ParseFloat(value[:n], 64)
		if err != nil {
			return Perf{}, fmt.Errorf("perfdata %q: value %q is not a number", label, value)
		}
		if numberPrefix("0"+value[n:]) > 1 || strings.HasPrefix(value[n:], ".") {
			return Perf{}, fmt.Errorf("perfdata %q: value %q is not a number", label, value)
		}
		p.Value, p.UOM = v, value[n:]
	}
	for i, f := range parts[1:] {
		if f == "" {
			continue
		}
		switch i {
		case 0, 1:
			r, err := ParseRange(f)
			if err != nil {
				return Perf{}, fmt.Errorf("perfdata %q: %w", label, err)
			}
			if i == 0 {
				p.Warn = &r
			} else {
				p.Crit = &r
			}
		case 2, 3:
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				return Perf{}, fmt.Errorf("perfdata %q: %s %q is not a number", label, [...]string{"min", "max"}[i-2], f)
			}
			if i == 2 {
				p.Min = &v
			} else {
				p.Max = &v
			}
		}
	}
	return p, nil
}

// numberPrefix returns the length of the decimal number that starts s.
func numberPrefix(s string) int {
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	digits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		digits++
	}
	// A dot is part of the number only when a digit follows, so "5." reads
	// as 5 with the unit "." and writes back the same.
	if i+1 < len(s) && s[i] == '.' && s[i+1] >= '0' && s[i+1] <= '9' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return 0
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '-' || s[j] == '+') {
			j++
		}
		k := j
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			k++
		}
		if k > j {
			i = k
		}
	}
	return i
}
