// Package conf holds immune's configuration files: their types, defaults,
// loading and validation. Every error names the file, line and field.
package conf

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Errors is every problem found in one file, each with its position.
type Errors []error

func (e Errors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "\n")
}

// FieldError is one problem at one place in a file.
type FieldError struct {
	File       string
	Line, Col  int
	Field, Msg string
}

func (e *FieldError) Error() string {
	pos := e.File
	if e.Line > 0 {
		pos += ":" + strconv.Itoa(e.Line)
		if e.Col > 0 {
			pos += ":" + strconv.Itoa(e.Col)
		}
	}
	if e.Field == "" {
		return pos + ": " + e.Msg
	}
	return pos + ": " + e.Field + ": " + e.Msg
}

// checker collects validation errors with the positions of their fields.
type checker struct {
	file string
	root *yaml.Node
	errs Errors
	// files has the files a config names checked: that they exist and can
	// be read, as the daemon will need them at start.
	files bool
}

// errorf records a problem with the field at path ("checks.2.interval").
func (c *checker) errorf(path, format string, args ...any) {
	line, col := 0, 0
	// A field the file leaves out is reported where its parent is.
	for p := path; p != ""; p = parentPath(p) {
		if n := lookup(c.root, p); n != nil {
			line, col = n.Line, n.Column
			break
		}
	}
	c.errs = append(c.errs, &FieldError{File: c.file, Line: line, Col: col, Field: displayPath(path), Msg: fmt.Sprintf(format, args...)})
}

func parentPath(path string) string {
	i := strings.LastIndexByte(path, '.')
	if i < 0 {
		return ""
	}
	return path[:i]
}

// pathAtLine is the dotted path of the deepest field whose key is on line,
// so that errors yaml.v3 reports by line alone can name their field.
func pathAtLine(n *yaml.Node, line int, prefix string) string {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if p := pathAtLine(c, line, prefix); p != "" {
				return p
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := join(prefix, n.Content[i].Value)
			if p := pathAtLine(n.Content[i+1], line, key); p != "" {
				return p
			}
			if n.Content[i].Line == line {
				return key
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if p := pathAtLine(c, line, join(prefix, strconv.Itoa(i))); p != "" {
				return p
			}
		}
	}
	return ""
}

// yamlKinds is the node kind of each of yaml.v3's tags.
var yamlKinds = map[string]yaml.Kind{"map": yaml.MappingNode, "seq": yaml.SequenceNode}

// valuePath is the deepest field whose value starts on line and is of
// kind (any scalar for 0).
func valuePath(n *yaml.Node, line int, kind yaml.Kind, prefix string) (string, bool) {
	best, found := "", false
	consider := func(path string, v *yaml.Node) {
		if v.Line == line && (v.Kind == kind || (kind == 0 && v.Kind == yaml.ScalarNode)) {
			best, found = path, true
		}
		if p, ok := valuePath(v, line, kind, path); ok {
			best, found = p, true
		}
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if p, ok := valuePath(c, line, kind, prefix); ok {
				return p, true
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			consider(join(prefix, n.Content[i].Value), n.Content[i+1])
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			consider(join(prefix, strconv.Itoa(i)), c)
		}
	}
	return best, found
}

func join(prefix, part string) string {
	if prefix == "" {
		return part
	}
	return prefix + "." + part
}

// displayPath writes "checks.2.interval" as "checks[2].interval".
func displayPath(path string) string {
	var b strings.Builder
	for i, part := range strings.Split(path, ".") {
		if _, err := strconv.Atoi(part); err == nil {
			b.WriteString("[" + part + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(part)
	}
	return b.String()
}

// lookup finds the node of a dotted path: map keys by name, sequence items
// by index. The key node is returned for maps, as that is where a person
// looks for the field.
func lookup(root *yaml.Node, path string) *yaml.Node {
	n := root
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	var key *yaml.Node
	for _, part := range strings.Split(path, ".") {
		if n == nil || part == "" {
			return nil
		}
		switch n.Kind {
		case yaml.MappingNode:
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == part {
					key, next = n.Content[i], n.Content[i+1]
					break
				}
			}
			n = next
		case yaml.SequenceNode:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(n.Content) {
				return nil
			}
			key, n = n.Content[i], n.Content[i]
		default:
			return nil
		}
	}
	if n == nil {
		return nil
	}
	if key != nil {
		return key
	}
	return n
}

// yamlLineRE finds the "line N: " yaml.v3 puts before each decoding error.
var yamlLineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// fieldNotFoundRE is yaml.v3's wording for an unknown key.
var fieldNotFoundRE = regexp.MustCompile(`^field (\S+) not found in type (\S+)$`)

// load reads a YAML file into v, refusing unknown keys, then checks it
// with validate, which fills in defaults and reports through the checker.
func load(path string, v any, validate func(*checker)) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	return decodeWith(path, data, v, validate, true)
}

// decode is load for text already read; name is the file name errors give.
// Every mistake is reported in one pass: a value that cannot be read does
// not stop the others from being read and checked.
func decode(name string, data []byte, v any, validate func(*checker)) error {
	return decodeWith(name, data, v, validate, false)
}

// decodeWith is decode, checking the files the config names when files is
// set: a config read from disk is about to be used on this host.
func decodeWith(name string, data []byte, v any, validate func(*checker), files bool) error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Errors{syntaxError(name, data, err)}
	}
	if root.Kind == 0 {
		return Errors{&FieldError{File: name, Msg: "the file is empty: it needs at least the required settings"}}
	}
	c := &checker{file: name, root: &root, files: files}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return Errors{c.decodeError(strings.TrimPrefix(err.Error(), "yaml: "), reflect.TypeOf(v))}
		}
		for _, msg := range te.Errors {
			c.errs = append(c.errs, c.decodeError(msg, reflect.TypeOf(v)))
		}
	}
	unread := map[string]bool{}
	for _, e := range c.errs {
		unread[e.(*FieldError).Field] = true
	}
	decoded := len(c.errs)
	validate(c)
	// A value that could not be read is reported once, as that, and not
	// again as missing or out of range.
	errs := c.errs[:decoded:decoded]
	seen := map[string]bool{}
	for _, e := range c.errs[decoded:] {
		fe := e.(*FieldError)
		key := fe.Field + "\x00" + fe.Msg
		if unread[fe.Field] || seen[key] {
			continue
		}
		seen[key] = true
		errs = append(errs, e)
	}
	// Then the signs of what no other check has complained about.
	flagged := map[string]bool{}
	for _, e := range errs {
		flagged[e.(*FieldError).Field] = true
	}
	c.errs = nil
	checkSigns(c, reflect.ValueOf(v).Elem(), "", flagged)
	errs = append(errs, c.errs...)
	if len(errs) == 0 {
		return nil
	}
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i].(*FieldError), errs[j].(*FieldError)
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return errs
}

// syntaxError turns a yaml.v3 syntax error ("yaml: line 3: ...") into one
// in plain words at the line at fault: for a line indented to no section,
// that line, which YAML reports as the line before.
func syntaxError(name string, data []byte, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		return &FieldError{File: name, Msg: syntaxWords(msg, "")}
	}
	line, _ := strconv.Atoi(m[1])
	lines := strings.Split(string(data), "\n")
	text := ""
	if line >= 1 && line <= len(lines) {
		text = lines[line-1]
	}
	if strings.Contains(m[2], "tab character") || strings.Contains(m[2], "cannot start any token") {
		for i, l := range lines {
			if strings.HasPrefix(strings.TrimLeft(l, " "), "\t") {
				return &FieldError{File: name, Line: i + 1, Col: strings.IndexByte(l, '\t') + 1, Msg: syntaxWords("tab character", l)}
			}
		}
	}
	if bad, col, want, ok := misindented(data); ok && bad <= line+1 {
		return &FieldError{File: name, Line: bad, Col: col, Msg: fmt.Sprintf(
			"indented by %s, which lines up with no section above it (%s)", spaces(col-1), indentChoices(want))}
	}
	return &FieldError{File: name, Line: line, Msg: syntaxWords(m[2], text)}
}

func spaces(n int) string {
	if n == 1 {
		return "1 space"
	}
	return strconv.Itoa(n) + " spaces"
}

func indentChoices(levels []int) string {
	var s []string
	for _, l := range levels {
		s = append(s, strconv.Itoa(l))
	}
	if len(s) == 1 {
		return "use " + s[0]
	}
	return "use " + strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// decodeError turns one of yaml.v3's messages ("line 3: ...") into a
// FieldError in plain words, at the field on that line.
func (c *checker) decodeError(msg string, root reflect.Type) error {
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		return &FieldError{File: c.file, Msg: plainWords(msg)}
	}
	line, _ := strconv.Atoi(m[1])
	e := &FieldError{File: c.file, Line: line, Msg: plainWords(m[2])}
	p := pathAtLine(c.root, line, "")
	if u := unmarshalRE.FindStringSubmatch(m[2]); u != nil {
		// The field whose value is of the wrong kind, not a key inside it.
		if vp, ok := valuePath(c.root, line, yamlKinds[u[1]], ""); ok {
			p = vp
		}
	}
	if p != "" {
		e.Field = displayPath(p)
		if n := lookup(c.root, p); n != nil && n.Line == line {
			e.Col = n.Column
		}
	}
	if f := fieldNotFoundRE.FindStringSubmatch(m[2]); f != nil {
		e.Msg = unknownKey(f[1], f[2], root)
	}
	return e
}
