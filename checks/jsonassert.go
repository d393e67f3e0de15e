package checks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The assertion language of check_api's --assert, which judges decoded JSON
// apart from the HTTP call. An assertion is a path into the JSON answer, an
// operator and, for most operators, a JSON value:
//
//	assertion = path ( "exists" | "absent" | compare value | "matches" string )
//	compare   = "==" | "!=" | "<" | "<=" | ">" | ">="
//	path      = "$" | [ "$." ] segment { "." segment }
//	segment   = key | index | quoted | "#"
//	index     = [ "-" ] digit { digit }    an array index; on an object, a key
//	quoted    = a JSON string              a key, even "0", "#" or "a.b"
//	key       = any bytes but whitespace, . " = ! < >
//	value     = a JSON value
//
// Whitespace may surround the operator; word operators need it before them.

type segKind int

const (
	segKey   segKind = iota // an object's member
	segIndex                // an array's element, or an object's member named by the digits
	segLen                  // the length of an array, object or string
)

type pathSegment struct {
	kind  segKind
	key   string
	index int
}

// assertion is one --assert.
type assertion struct {
	path  []pathSegment
	op    string
	value any            // a decoded JSON value, numbers as json.Number
	re    *regexp.Regexp // for matches
}

const pathStops = " \t\r\n\v\f.\"=!<>"

// parseAssertion reads one --assert.
func parseAssertion(text string) (assertion, error) {
	var a assertion
	rest := strings.TrimLeft(text, " \t\r\n\v\f")
	if rest == "" {
		return a, errors.New("empty: want PATH OP VALUE, such as status == \"UP\"")
	}
	path, rest, err := parsePath(rest)
	if err != nil {
		return a, err
	}
	a.path = path
	a.op, rest = cutOperator(rest)
	if a.op == "" {
		found := strings.TrimSpace(rest)
		if found == "" {
			return a, fmt.Errorf("no operator after %s: want ==, !=, <, <=, >, >=, matches, exists or absent", pathString(path))
		}
		return a, fmt.Errorf("%q after %s is no operator: want ==, !=, <, <=, >, >=, matches, exists or absent", firstWord(found), pathString(path))
	}
	rest = strings.TrimSpace(rest)
	if a.op == "exists" || a.op == "absent" {
		if rest != "" {
			return a, fmt.Errorf("%q after %s: it takes no value", rest, a.op)
		}
		return a, nil
	}
	if rest == "" {
		return a, fmt.Errorf("no value after %s: want a JSON value, such as \"UP\" or 0", a.op)
	}
	if a.value, err = parseJSON([]byte(rest)); err != nil {
		return a, fmt.Errorf("value %s is not JSON (strings need double quotes): %v", rest, err)
	}
	switch a.op {
	case "<", "<=", ">", ">=":
		if _, ok := a.value.(json.Number); !ok {
			return a, fmt.Errorf("%s needs a number, not %s", a.op, rest)
		}
	case "matches":
		pattern, ok := a.value.(string)
		if !ok {
			return a, fmt.Errorf("matches needs a regular expression in a JSON string, not %s", rest)
		}
		if a.re, err = regexp.Compile(pattern); err != nil {
			return a, fmt.Errorf("matches: %v", err)
		}
	}
	return a, nil
}

func firstWord(s string) string {
	if i := strings.IndexAny(s, " \t\r\n\v\f"); i >= 0 {
		return s[:i]
	}
	return s
}

func parsePath(s string) ([]pathSegment, string, error) {
	if strings.HasPrefix(s, "$") && (len(s) == 1 || strings.IndexByte(pathStops, s[1]) >= 0) {
		if len(s) == 1 || s[1] != '.' {
			return nil, s[1:], nil
		}
		s = s[2:]
	}
	var path []pathSegment
	for {
		seg, rest, err := parseSegment(s)
		if err != nil {
			return nil, "", err
		}
		path = append(path, seg)
		if !strings.HasPrefix(rest, ".") {
			return path, rest, nil
		}
		s = rest[1:]
	}
}

func parseSegment(s string) (pathSegment, string, error) {
	if strings.HasPrefix(s, `"`) {
		end := 1
		for end < len(s) && s[end] != '"' {
			if s[end] == '\\' {
				end++
			}
			end++
		}
		if end >= len(s) {
			return pathSegment{}, "", fmt.Errorf("quoted key %s has no closing quote", s)
		}
		var key string
		if err := json.Unmarshal([]byte(s[:end+1]), &key); err != nil {
			return pathSegment{}, "", fmt.Errorf("quoted key %s: %v", s[:end+1], err)
		}
		return pathSegment{kind: segKey, key: key}, s[end+1:], nil
	}
	end := 0
	for end < len(s) && strings.IndexByte(pathStops, s[end]) < 0 {
		end++
	}
	word := s[:end]
	switch {
	case word == "" && s == "":
		return pathSegment{}, "", errors.New("the path ends with a '.'")
	case word == "":
		return pathSegment{}, "", fmt.Errorf("empty path segment before %q: want a key, an index or #", firstWord(strings.TrimLeft(s, " \t\r\n\v\f")))
	case word == "#":
		return pathSegment{kind: segLen, key: word}, s[end:], nil
	}
	if n, err := strconv.Atoi(word); err == nil && isInteger(word) {
		return pathSegment{kind: segIndex, key: word, index: n}, s[end:], nil
	}
	return pathSegment{kind: segKey, key: word}, s[end:], nil
}

var integerRE = lazyRegexp(`^-?[0-9]+$`)

func isInteger(s string) bool { return integerRE().MatchString(s) }

// cutOperator takes the operator off the start of s, after any whitespace.
func cutOperator(s string) (op, rest string) {
	trimmed := strings.TrimLeft(s, " \t\r\n\v\f")
	for _, sym := range []string{"==", "!=", "<=", ">=", "<", ">"} {
		if strings.HasPrefix(trimmed, sym) {
			return sym, trimmed[len(sym):]
		}
	}
	if len(trimmed) == len(s) {
		return "", s
	}
	for _, word := range []string{"exists", "absent", "matches"} {
		after, ok := strings.CutPrefix(trimmed, word)
		if ok && (after == "" || strings.IndexByte(" \t\r\n\v\f", after[0]) >= 0) {
			return word, after
		}
	}
	return "", s
}

// String writes the assertion so that parseAssertion reads it back the same.
func (a assertion) String() string {
	if a.op == "exists" || a.op == "absent" {
		return pathString(a.path) + " " + a.op
	}
	return pathString(a.path) + " " + a.op + " " + jsonText(a.value)
}

func pathString(path []pathSegment) string {
	if len(path) == 0 {
		return "$"
	}
	parts := make([]string, len(path))
	for i, seg := range path {
		parts[i] = seg.key
		if seg.kind == segKey && !plainKey(seg.key) || i == 0 && seg.key == "$" {
			parts[i] = jsonText(seg.key)
		}
	}
	return strings.Join(parts, ".")
}

// plainKey reports whether a key reads back as the same key unquoted.
func plainKey(k string) bool {
	return k != "" && k != "#" && !isInteger(k) && !strings.ContainsAny(k, pathStops)
}

// jsonText writes v as compact JSON, leaving <, > and & as they are.
func jsonText(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// shortJSON is jsonText cut to a length that fits a status line.
func shortJSON(v any) string {
	s := jsonText(v)
	if len(s) <= 80 {
		return s
	}
	cut := 77
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// check tests the assertion on the decoded answer. The text says what was
// found and what was wanted, whether the test passed or not.
func (a assertion) check(doc any) (bool, string) {
	p := pathString(a.path)
	want := strings.TrimPrefix(a.String(), p+" ")
	got, missing := resolve(doc, a.path)
	if missing != "" {
		return a.op == "absent", fmt.Sprintf("%s is missing (%s), want %s", p, missing, want)
	}
	found := p + " is " + shortJSON(got)
	ok := false
	switch a.op {
	case "exists":
		ok = true
	case "==":
		ok = jsonEqual(got, a.value)
	case "!=":
		ok = !jsonEqual(got, a.value)
	case "<", "<=", ">", ">=":
		n, isNum := numberText(got)
		if !isNum {
			return false, fmt.Sprintf("%s, not a number, want %s", found, want)
		}
		cmp := compareNumbers(n, a.value.(json.Number).String())
		ok = map[string]bool{"<": cmp < 0, "<=": cmp <= 0, ">": cmp > 0, ">=": cmp >= 0}[a.op]
	case "matches":
		s, isStr := got.(string)
		if !isStr {
			return false, fmt.Sprintf("%s, not a string, want %s", found, want)
		}
		ok = a.re.MatchString(s)
	}
	return ok, found + ", want " + want
}

// resolve follows path into doc; when it cannot, it says why.
func resolve(doc any, path []pathSegment) (any, string) {
	cur := doc
	for i, seg := range path {
		where := "the answer"
		if i > 0 {
			where = pathString(path[:i])
		}
		switch v := cur.(type) {
		case map[string]any:
			if seg.kind == segLen {
				cur = json.Number(strconv.Itoa(len(v)))
				continue
			}
			next, ok := v[seg.key]
			if !ok {
				return nil, fmt.Sprintf("%s has no key %s", where, jsonText(seg.key))
			}
			cur = next
		case []any:
			switch seg.kind {
			case segLen:
				cur = json.Number(strconv.Itoa(len(v)))
				continue
			case segKey:
				return nil, fmt.Sprintf("%s is an array, not an object", where)
			}
			n := seg.index
			if n < 0 {
				n += len(v)
			}
			if n < 0 || n >= len(v) {
				return nil, fmt.Sprintf("%s has %d %s, no index %d", where, len(v), plural(len(v), "element", "elements"), seg.index)
			}
			cur = v[n]
		case string:
			if seg.kind == segLen {
				cur = json.Number(strconv.Itoa(utf8.RuneCountInString(v)))
				continue
			}
			return nil, fmt.Sprintf("%s is a string, not an object or array", where)
		default:
			return nil, fmt.Sprintf("%s is %s, not an object or array", where, jsonText(v))
		}
	}
	return cur, ""
}

// jsonEqual compares decoded JSON values, numbers by value.
func jsonEqual(a, b any) bool {
	switch x := a.(type) {
	case json.Number:
		y, ok := b.(json.Number)
		return ok && compareNumbers(x.String(), y.String()) == 0
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !jsonEqual(xv, yv) {
				return false
			}
		}
		return true
	}
	return a == b
}

var decimalRE = lazyRegexp(`^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)

// numberText is v's number: a JSON number, or a string holding a decimal
// number, as payment APIs send amounts.
func numberText(v any) (string, bool) {
	switch x := v.(type) {
	case json.Number:
		return x.String(), true
	case string:
		s := strings.TrimSpace(x)
		return s, decimalRE().MatchString(s)
	}
	return "", false
}

// maxExactDigits bounds the integers compared exactly: converting a
// partner's megabyte-long number would cost more than the check may.
const maxExactDigits = 100

// compareNumbers compares two decimal numbers: integers exactly, others as
// float64.
func compareNumbers(a, b string) int {
	if isInteger(a) && isInteger(b) && len(a) <= maxExactDigits && len(b) <= maxExactDigits {
		x, okX := new(big.Int).SetString(a, 10)
		y, okY := new(big.Int).SetString(b, 10)
		if okX && okY {
			return x.Cmp(y)
		}
	}
	// A range error still gives ±Inf or ±0, which order correctly.
	x, _ := strconv.ParseFloat(a, 64)
	y, _ := strconv.ParseFloat(b, 64)
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}
