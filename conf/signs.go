package conf

import (
	"reflect"
	"strconv"
	"strings"
)

var durationType = reflect.TypeOf(Duration(0))

// checkSigns reports every duration and whole number in the config that is
// negative, none of which means anything: a negative timeout, interval or
// size would fail at start or, worse, act as zero. Fields already flagged
// (by their display path) are skipped.
func checkSigns(c *checker, v reflect.Value, path string, flagged map[string]bool) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			checkSigns(c, v.Elem(), path, flagged)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "-" || name == "" {
				continue
			}
			checkSigns(c, v.Field(i), join(path, name), flagged)
		}
	case reflect.Slice:
		for i := range v.Len() {
			checkSigns(c, v.Index(i), join(path, strconv.Itoa(i)), flagged)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.Int() >= 0 || flagged[displayPath(path)] {
			return
		}
		if v.Type() == durationType {
			c.errorf(path, "%s: a duration must not be negative", Duration(v.Int()))
			return
		}
		c.errorf(path, "%d: must not be negative", v.Int())
	}
}
