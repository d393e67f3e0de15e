package conf

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// valueError is a setting's value that cannot be read, as yaml.v3 collects
// it: the decoding goes on, so that one bad value hides no other mistake.
func valueError(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: "+format, append([]any{n.Line}, args...)...)}}
}

// unmarshalRE is yaml.v3's wording for a value of the wrong kind.
var unmarshalRE = regexp.MustCompile("^cannot unmarshal !!(\\w+)(?: `(.*)`)? into (\\S+)$")

// duplicateKeyRE is yaml.v3's wording for a key given twice.
var duplicateKeyRE = regexp.MustCompile(`^mapping key "(.*)" already defined at line (\d+)$`)

// plainWords rewrites one of yaml.v3's decoding messages without YAML's
// jargon (!!str, unmarshal, mapping) and without Go's type names.
func plainWords(msg string) string {
	if m := duplicateKeyRE.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%q is given twice (first at line %s); keep one", m[1], m[2])
	}
	m := unmarshalRE.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	found, value, into := m[1], m[2], m[3]
	want := goTypeWords(into)
	if value != "" {
		if len(value) > 40 {
			value = value[:40] + "..."
		}
		return fmt.Sprintf("%q is not %s", value, want)
	}
	return fmt.Sprintf("expected %s, found %s", want, yamlKindWords(found))
}

// goTypeWords says what a Go type holds in a config's terms.
func goTypeWords(t string) string {
	switch {
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "int"):
		return "a whole number"
	case strings.HasPrefix(t, "uint"):
		return "a whole number, 0 or more"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "string":
		return "a single value (text)"
	case strings.HasPrefix(t, "[]"):
		return "a list (- item lines, or [a, b])"
	case strings.HasPrefix(t, "map["):
		return "a set of key: value lines"
	default:
		return "a section of key: value lines"
	}
}

func yamlKindWords(tag string) string {
	switch tag {
	case "map":
		return "a set of key: value lines"
	case "seq":
		return "a list"
	case "str":
		return "text"
	case "int", "float":
		return "a number"
	case "bool":
		return "true or false"
	case "null":
		return "nothing"
	default:
		return tag
	}
}

// unknownKey says a key is not a setting, with the closest known one when
// it looks like a misspelling of it.
func unknownKey(key, typeName string, root reflect.Type) string {
	known := keysOf(findType(root, typeName, map[reflect.Type]bool{}))
	if best := closest(key, known); best != "" {
		return fmt.Sprintf("unknown setting %q; did you mean %q?", key, best)
	}
	if len(known) > 0 && len(known) <= 12 {
		return fmt.Sprintf("unknown setting %q; the settings here are %s", key, strings.Join(known, ", "))
	}
	return fmt.Sprintf("unknown setting %q", key)
}

// findType finds the struct type whose name (conf.NRPE) yaml.v3 gave.
func findType(t reflect.Type, name string, seen map[reflect.Type]bool) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] {
		return nil
	}
	seen[t] = true
	if t.String() == name {
		return t
	}
	for i := range t.NumField() {
		if found := findType(t.Field(i).Type, name, seen); found != nil {
			return found
		}
	}
	return nil
}

// keysOf is the YAML keys of a struct type, sorted.
func keysOf(t reflect.Type) []string {
	if t == nil {
		return nil
	}
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case name == "-" || !f.IsExported():
		case strings.Contains(opts, "inline"):
			keys = append(keys, keysOf(f.Type)...)
		case name != "":
			keys = append(keys, name)
		default:
			keys = append(keys, strings.ToLower(f.Name))
		}
	}
	sort.Strings(keys)
	return keys
}

// closest is the known key within a small edit distance of key, "" if none.
func closest(key string, known []string) string {
	best, bestD := "", len(key)/3+2
	for _, k := range known {
		d := editDistance(strings.ToLower(key), k)
		if strings.ReplaceAll(strings.ToLower(key), "-", "_") == k {
			d = 0
		}
		if d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is Levenshtein's distance, with a swap of two neighbours
// counting as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// syntaxWords rewrites yaml.v3's syntax messages in plain words.
func syntaxWords(msg, line string) string {
	switch {
	case strings.Contains(msg, "tab character") || (strings.Contains(msg, "cannot start any token") && strings.Contains(line, "\t")):
		return "a tab is used for indentation; indent with spaces"
	case strings.Contains(msg, "did not find expected key"):
		return "this line is not a key: value pair at the indentation of the section it is in"
	case strings.Contains(msg, "mapping values are not allowed"):
		return "a ':' where no key can start: quote a value that holds ': ', or check the indentation"
	case strings.Contains(msg, "cannot start any token"):
		return "this value starts with a character that needs quotes (\", ') around the value"
	case strings.Contains(msg, "did not find expected ',' or ']'"):
		return "a [list] is not closed with ']', or its items are not separated by commas"
	case strings.Contains(msg, "did not find expected ',' or '}'"):
		return "a {section} is not closed with '}', or its items are not separated by commas"
	case strings.Contains(msg, "did not find expected '-' indicator"):
		return "a list item without '- ' at the list's indentation"
	case strings.Contains(msg, "block sequence entries are not allowed"):
		return "a '- ' list item on the same line as its key: put the items on the lines below"
	case strings.Contains(msg, "could not find expected ':'"):
		return "a key without ':' after it"
	case strings.Contains(msg, "found unexpected end of stream"):
		return "the file ends inside a quoted value or a bracket"
	case strings.Contains(msg, "did not find expected node content"):
		return "a value is missing, or cannot start here"
	}
	return msg
}

// misindented finds the first line whose indentation matches no section
// it could belong to: a key that is neither inside the line above nor
// aligned with one of the sections enclosing it. Line and column are
// 1-based; ok is false when every line lines up.
func misindented(data []byte) (line, col int, want []int, ok bool) {
	stack := []int{0}
	blockScalar := -1 // the indentation of a | or > value's key, while in it
	for i, text := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimLeft(text, " ")
		indent := len(text) - len(trimmed)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, "---") {
			continue
		}
		if blockScalar >= 0 {
			if indent > blockScalar {
				continue
			}
			blockScalar = -1
		}
		top := stack[len(stack)-1]
		if indent > top {
			stack = append(stack, indent)
		} else {
			open := append([]int(nil), stack...)
			for len(stack) > 1 && stack[len(stack)-1] > indent {
				stack = stack[:len(stack)-1]
			}
			if stack[len(stack)-1] != indent {
				return i + 1, indent + 1, open, true
			}
		}
		// "- key: v" opens a section at the key's indentation.
		rest := trimmed
		extra := indent
		for strings.HasPrefix(rest, "- ") {
			after := strings.TrimLeft(rest[2:], " ")
			extra += len(rest) - len(after)
			rest = after
			stack = append(stack, extra)
		}
		if v := strings.TrimSpace(afterColon(rest)); v == "|" || v == ">" || strings.HasPrefix(v, "|") || strings.HasPrefix(v, ">") {
			blockScalar = extra
		}
	}
	return 0, 0, nil, false
}

// afterColon is what follows a line's "key:" outside quotes, "" if none.
func afterColon(s string) string {
	if i := strings.Index(s, ": "); i >= 0 && !strings.ContainsAny(s[:i], `"'`) {
		return s[i+2:]
	}
	return ""
}
