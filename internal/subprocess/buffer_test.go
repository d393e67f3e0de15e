package subprocess

import "testing"

func TestBuffer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tail    bool
		writes  []string
		max     int
		kept    string
		dropped int64
	}{
		{"fits", false, []string{"OK\n", "more\n"}, 16, "OK\nmore\n", 0},
		{"head keeps the start", false, []string{"12345", "6789"}, 8, "12345678", 1},
		{"head, writes after full", false, []string{"12345678", "9"}, 8, "12345678", 1},
		{"tail fits", true, []string{"OK\n", "more\n"}, 16, "OK\nmore\n", 0},
		{"tail keeps the end", true, []string{"12345", "6789"}, 8, "23456789", 1},
		{"tail, one long write", true, []string{"ab", "0123456789"}, 8, "23456789", 4},
		{"tail, many small writes", true, []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "0"}, 4, "7890", 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &Buffer{Max: tc.max, Tail: tc.tail}
			var total int64
			for _, w := range tc.writes {
				if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
				total += int64(len(w))
			}
			if b.String() != tc.kept || b.Dropped() != tc.dropped || b.Total() != total {
				t.Errorf("kept %q, dropped %d of %d; want %q, dropped %d of %d", b.String(), b.Dropped(), b.Total(), tc.kept, tc.dropped, total)
			}
		})
	}
}
