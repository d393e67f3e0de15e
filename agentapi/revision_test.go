package agentapi

import (
	"strings"
	"testing"
)

func TestValidRevision(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"R1", true},
		{"v1.2.3_rc-1", true},
		{"0123456789abcdef0123456789abcdef01234567", true},
		{strings.Repeat("r", 64), true},
		{"a-", true},
		{"", false},
		{".", false},
		{"..", false},
		{"-R1", false},
		{"--help", false},
		{"a/b", false},
		{"a b", false},
		{"a~b", false},
		{strings.Repeat("r", 65), false},
	} {
		err := ValidRevision(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidRevision(%q) = %v, want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "revision "+`"`+tc.name+`": `) {
			t.Errorf("ValidRevision(%q): %q does not name the revision", tc.name, err)
		}
	}
}
