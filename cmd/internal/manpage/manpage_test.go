package manpage

import (
	"bytes"
	"flag"
	"strings"
	"testing"
)

// TestWrite: text that roff would read as requests or escapes is written
// as text; options carry their argument and any default that is not zero.
func TestWrite(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.String("dir", "/var/lib/x", "the `dir`ectory")
	fs.Bool("quiet", false, "say less")
	fs.Int("n", 0, "how many")
	p := &Page{Name: "x-y", Section: 1, Summary: "does \\ things", Description: ".starts with a dot\n\n'and an apostrophe", Flags: fs,
		Synopsis: []Synopsis{{Command: "x y", Args: "[--quiet] FILE..."}}, SeeAlso: []string{"x(1)", "y(8)"}}
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`.TH "X\-Y" 1 "" "" ""`,
		`x\-y \- does \e things`,
		"\n\\&.starts with a dot\n.PP\n\\&'and an apostrophe\n",
		`[\fB\-\-quiet\fR] \fIFILE\fR...`,
		".TP\n\\fB\\-\\-dir\\fR \\fIdir\\fR\nthe directory (default: /var/lib/x)\n",
		".TP\n\\fB\\-\\-quiet\\fR\nsay less\n",
		".TP\n\\fB\\-\\-n\\fR \\fIint\\fR\nhow many\n",
		".BR x (1),\n.BR y (8)\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("page lacks %q:\n%s", want, b.String())
		}
	}
	if p.FileName() != "x-y.1" {
		t.Errorf("FileName %q", p.FileName())
	}
}
