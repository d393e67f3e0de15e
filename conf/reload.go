package conf

import (
	"reflect"
	"strings"
)

// KeepSettings is for a reload: it copies into next (a pointer to a config
// struct) the top-level settings of cur, named by their YAML keys, that
// only a restart can change, and returns the keys whose values differed.
func KeepSettings(next, cur any, keys ...string) (differ []string) {
	n, c := reflect.ValueOf(next).Elem(), reflect.ValueOf(cur).Elem()
	for _, key := range keys {
		i := fieldByKey(n.Type(), key)
		if i < 0 {
			panic("conf.KeepSettings: no setting " + key + " in " + n.Type().String())
		}
		if !reflect.DeepEqual(n.Field(i).Interface(), c.Field(i).Interface()) {
			differ = append(differ, key)
			n.Field(i).Set(c.Field(i))
		}
	}
	return differ
}

// fieldByKey is the index of the field of struct type t whose yaml tag is key.
func fieldByKey(t reflect.Type, key string) int {
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name == key {
			return i
		}
	}
	return -1
}
