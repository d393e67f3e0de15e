// Package conf holds immune's configuration files: their types, defaults,
// loading and validation. Every error names the file, line and field.
package conf

import (
	"bytes"
	"errors"
	"fmt"
	"os"
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
	return decode(path, data, v, validate)
}

// decode is load for text already read; name is the file name errors give.
func decode(name string, data []byte, v any, validate func(*checker)) error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Errors{yamlError(name, err)}
	}
	if root.Kind == 0 {
		return Errors{&FieldError{File: name, Msg: "empty config"}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return Errors{decodeError(name, strings.TrimPrefix(err.Error(), "yaml: "), &root)}
		}
		var errs Errors
		for _, msg := range te.Errors {
			errs = append(errs, decodeError(name, msg, &root))
		}
		return errs
	}
	c := &checker{file: name, root: &root}
	validate(c)
	if len(c.errs) > 0 {
		sort.SliceStable(c.errs, func(i, j int) bool {
			return c.errs[i].(*FieldError).Line < c.errs[j].(*FieldError).Line
		})
		return c.errs
	}
	return nil
}

// yamlError turns a yaml.v3 syntax error ("yaml: line 3: ...") into one with the file's name.
func yamlError(name string, err error) error {
	return decodeError(name, strings.TrimPrefix(err.Error(), "yaml: "), nil)
}

// decodeError turns one of yaml.v3's messages ("line 3: ...") into a
// FieldError, naming the field on that line when root is known.
func decodeError(name, msg string, root *yaml.Node) error {
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		return &FieldError{File: name, Msg: msg}
	}
	line, _ := strconv.Atoi(m[1])
	e := &FieldError{File: name, Line: line, Msg: m[2]}
	if f := fieldNotFoundRE.FindStringSubmatch(e.Msg); f != nil {
		e.Msg = fmt.Sprintf("unknown field %q", f[1])
	}
	if root != nil {
		e.Field = displayPath(pathAtLine(root, line, ""))
	}
	return e
}
