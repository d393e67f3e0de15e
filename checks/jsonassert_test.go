package checks

import (
	"strings"
	"testing"
)

func TestParseAssertion(t *testing.T) {
	tests := []struct {
		in, want string // want: the canonical form, or the error's text
		wantErr  bool
	}{
		{`status == "AUTHORIZED"`, `status == "AUTHORIZED"`, false},
		{`  components.db.status   !=   "DOWN"  `, `components.db.status != "DOWN"`, false},
		{`items.0.price > 0`, `items.0.price > 0`, false},
		{`count>=1`, `count >= 1`, false},
		{`count<=1e3`, `count <= 1e3`, false},
		{`items.-1.id < -2.5`, `items.-1.id < -2.5`, false},
		{`id exists`, `id exists`, false},
		{`error absent`, `error absent`, false},
		{`id matches "^pay_[0-9]+$"`, `id matches "^pay_[0-9]+$"`, false},
		{`items.# >= 1`, `items.# >= 1`, false},
		{`"a.b"."0"."#".c == null`, `"a.b"."0"."#".c == null`, false},
		{`"plain".key == true`, `plain.key == true`, false},
		{`$ == {"a": [1, "x"]}`, `$ == {"a":[1,"x"]}`, false},
		{`$.status == "UP"`, `status == "UP"`, false},
		{`"$" exists`, `"$" exists`, false},
		{`a.$ exists`, `a.$ exists`, false},
		{`tags == ["a","<b>"]`, `tags == ["a","<b>"]`, false},
		{`名前 == "値"`, `名前 == "値"`, false},
		{`exists exists`, `exists exists`, false},

		{``, `empty`, true},
		{`status`, `no operator after status`, true},
		{`status = "UP"`, `"=" after status is no operator`, true},
		{`status is "UP"`, `"is" after status is no operator`, true},
		{`status == `, `no value after ==`, true},
		{`status == UP`, `value UP is not JSON (strings need double quotes)`, true},
		{`status == 'UP'`, `is not JSON`, true},
		{`status == "UP" "DOWN"`, `more after the JSON value`, true},
		{`count > "1"`, `> needs a number, not "1"`, true},
		{`id matches 5`, `matches needs a regular expression in a JSON string`, true},
		{`id matches "("`, `matches: error parsing regexp`, true},
		{`id exists 1`, `"1" after exists: it takes no value`, true},
		{`a..b == 1`, `empty path segment before ".b"`, true},
		{`a. == 1`, `empty path segment before "=="`, true},
		{`.a == 1`, `empty path segment`, true},
		{`== 1`, `empty path segment before "=="`, true},
		{`"unterminated == 1`, `has no closing quote`, true},
		{`"bad\q" == 1`, `quoted key "bad\q"`, true},
		{`idexists`, `no operator after idexists`, true},
		{`"a"exists`, `"exists" after a is no operator`, true},
	}
	for _, tt := range tests {
		a, err := parseAssertion(tt.in)
		switch {
		case tt.wantErr && err == nil:
			t.Errorf("parseAssertion(%q) = %s, want an error with %q", tt.in, a, tt.want)
		case tt.wantErr && !strings.Contains(err.Error(), tt.want):
			t.Errorf("parseAssertion(%q): error %q, want one with %q", tt.in, err, tt.want)
		case !tt.wantErr && err != nil:
			t.Errorf("parseAssertion(%q): %v", tt.in, err)
		case !tt.wantErr && a.String() != tt.want:
			t.Errorf("parseAssertion(%q) = %s, want %s", tt.in, a, tt.want)
		}
	}
}

const assertDoc = `{
	"status": "AUTHORIZED", "id": "pay_000042", "amount": 12.50, "total": "1002.21",
	"count": 3, "big": 123456789012345678901234567890, "ok": true, "none": null,
	"items": [{"price": 9.99}, {"price": 0}, {"price": "abc"}],
	"components": {"db": {"status": "UP"}, "cache": {"status": "DOWN"}},
	"a.b": {"0": "zero"}, "tags": ["x", "y"], "name": "Zoë"
}`

func TestAssertionCheck(t *testing.T) {
	doc, err := parseJSON([]byte(assertDoc))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		assert string
		ok     bool
		text   string
	}{
		{`status == "AUTHORIZED"`, true, `status is "AUTHORIZED", want == "AUTHORIZED"`},
		{`status == "DECLINED"`, false, `status is "AUTHORIZED", want == "DECLINED"`},
		{`status != "DECLINED"`, true, `status is "AUTHORIZED", want != "DECLINED"`},
		{`amount == 12.5`, true, `amount is 12.50, want == 12.5`},
		{`amount == "12.5"`, false, `amount is 12.50, want == "12.5"`},
		{`amount > 12.49`, true, `amount is 12.50, want > 12.49`},
		{`amount >= 12.5`, true, `amount is 12.50, want >= 12.5`},
		{`amount < 12.5`, false, `amount is 12.50, want < 12.5`},
		{`total > 1000`, true, `total is "1002.21", want > 1000`},
		{`count <= 3`, true, `count is 3, want <= 3`},
		{`big > 123456789012345678901234567889`, true, `big is 123456789012345678901234567890, want > 123456789012345678901234567889`},
		{`big == 123456789012345678901234567891`, false, `big is 123456789012345678901234567890, want == 123456789012345678901234567891`},
		{`ok == true`, true, `ok is true, want == true`},
		{`none == null`, true, `none is null, want == null`},
		{`none exists`, true, `none is null, want exists`},
		{`id exists`, true, `id is "pay_000042", want exists`},
		{`id matches "^pay_[0-9]{6}$"`, true, `id is "pay_000042", want matches "^pay_[0-9]{6}$"`},
		{`count matches "3"`, false, `count is 3, not a string, want matches "3"`},
		{`items.0.price > 0`, true, `items.0.price is 9.99, want > 0`},
		{`items.1.price > 0`, false, `items.1.price is 0, want > 0`},
		{`items.2.price > 0`, false, `items.2.price is "abc", not a number, want > 0`},
		{`items.-1.price == "abc"`, true, `items.-1.price is "abc", want == "abc"`},
		{`items.3.price > 0`, false, `items.3.price is missing (items has 3 elements, no index 3), want > 0`},
		{`items.# >= 1`, true, `items.# is 3, want >= 1`},
		{`components.# == 2`, true, `components.# is 2, want == 2`},
		{`name.# == 3`, true, `name.# is 3, want == 3`},
		{`items.price exists`, false, `items.price is missing (items is an array, not an object), want exists`},
		{`components.db.status != "DOWN"`, true, `components.db.status is "UP", want != "DOWN"`},
		{`components.cache.status != "DOWN"`, false, `components.cache.status is "DOWN", want != "DOWN"`},
		{`components.queue.status != "DOWN"`, false, `components.queue.status is missing (components has no key "queue"), want != "DOWN"`},
		{`error absent`, true, `error is missing (the answer has no key "error"), want absent`},
		{`status absent`, false, `status is "AUTHORIZED", want absent`},
		{`status.code exists`, false, `status.code is missing (status is a string, not an object or array), want exists`},
		{`count.x exists`, false, `count.x is missing (count is 3, not an object or array), want exists`},
		{`"a.b"."0" == "zero"`, true, `"a.b"."0" is "zero", want == "zero"`},
		{`"a.b".0 == "zero"`, true, `"a.b".0 is "zero", want == "zero"`},
		{`tags == ["x","y"]`, true, `tags is ["x","y"], want == ["x","y"]`},
		{`tags == ["y","x"]`, false, `tags is ["x","y"], want == ["y","x"]`},
		{`components.db == {"status":"UP"}`, true, `components.db is {"status":"UP"}, want == {"status":"UP"}`},
		{`$.# == 13`, true, `# is 13, want == 13`},
	}
	for _, tt := range tests {
		a, err := parseAssertion(tt.assert)
		if err != nil {
			t.Errorf("parseAssertion(%q): %v", tt.assert, err)
			continue
		}
		ok, text := a.check(doc)
		if ok != tt.ok || text != tt.text {
			t.Errorf("%s:\n got %v %s\nwant %v %s", tt.assert, ok, text, tt.ok, tt.text)
		}
	}
}

// FuzzParseAssertion: no text makes the parser or the test panic, and what
// parses writes back to text that parses to the same assertion.
func FuzzParseAssertion(f *testing.F) {
	for _, s := range []string{
		`status == "AUTHORIZED"`, `components.db.status != "DOWN"`, `items.0.price > 0`,
		`count >= 1`, `id exists`, `error absent`, `id matches "^a+$"`, `"a.b".# == 2`,
		`$ == [1,{"a":null}]`, `items.-1 <= 1e400`, `"\u00e9\"x" exists`, `a.$.b == "\t"`,
	} {
		f.Add(s)
	}
	doc, err := parseJSON([]byte(assertDoc))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := parseAssertion(s)
		if err != nil {
			return
		}
		text := a.String()
		b, err := parseAssertion(text)
		if err != nil {
			t.Fatalf("%q wrote %q, which does not parse: %v", s, text, err)
		}
		if b.String() != text {
			t.Fatalf("%q wrote %q, which writes %q", s, text, b.String())
		}
		a.check(doc)
		a.check(nil)
	})
}

// TestCompareNumbers: integers compare exactly however long, up to the
// bound past which they are floats; other numbers compare as float64.
func TestCompareNumbers(t *testing.T) {
	long := strings.Repeat("9", maxExactDigits)
	tests := []struct {
		a, b string
		want int
	}{
		{"1", "2", -1},
		{"12.50", "12.5", 0},
		{"-3", "-2.5", -1},
		{"1e3", "1000", 0},
		{"123456789012345678901234567890", "123456789012345678901234567891", -1},
		{long + "1", long + "0", 0}, // past the bound: equal as float64
		{long, long[1:], 1},
		{"1e400", "1e399", 0}, // both +Inf
		{"-1e400", "0", -1},
	}
	for _, tt := range tests {
		if got := compareNumbers(tt.a, tt.b); got != tt.want {
			t.Errorf("compareNumbers(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
