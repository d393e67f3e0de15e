package agent

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// FuzzSpoolFiles: whatever a crash or a disk left in a segment and a
// cursor file, the spool opens, and a result appended after is neither
// lost nor sent twice once acknowledged, across a restart.
func FuzzSpoolFiles(f *testing.F) {
	line := func(e Entry, seq uint64) string {
		b, _ := json.Marshal(withSeq(e, seq))
		return string(b) + "\n"
	}
	for _, seed := range []struct{ segment, cursor string }{
		{line(spoolEntry(1), 1) + line(spoolEntry(2), 2), `{"next":2}`},
		{line(spoolEntry(1), 1) + `{"seq":2,"serv`, `{"next":1}`},
		{line(spoolEntry(1), 1) + "garbage\n" + line(spoolEntry(3), 3), `{"next":3}`},
		{line(spoolEntry(1), 1), `{"next":99}`},
		{line(spoolEntry(1), 1), `{"next":-1}`},
		{line(spoolEntry(1), 1), `not json`},
		{line(spoolEntry(1), 1), ``},
		{line(spoolEntry(5), 5) + line(spoolEntry(3), 3), `{"next":4}`},
		{line(spoolEntry(1), 18446744073709551615), `{"next":1}`},
		{line(spoolEntry(1), 1), `{"next":18446744073709551615}`},
		{`{"seq":0}` + "\n", `{"next":0}`},
		{"", `{"next":1}`},
		{"\n\n\n", `{}`},
	} {
		f.Add([]byte(seed.segment), []byte(seed.cursor))
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, segment, cursor []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "00000000000000000001"+segSuffix), segment, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, cursorPrefix+"t"+cursorSuffix), cursor, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := OpenSpool(dir, 1<<20, []string{"t"}, log)
		if err != nil {
			t.Fatalf("open spool over damaged files: %v", err)
		}
		if _, err := s.Peek("t", 1<<16); err != nil {
			s.Close()
			t.Fatalf("peek: %v", err)
		}
		mark := spoolEntry(7)
		mark.Output = "appended after the damage"
		if err := s.Append(mark); err != nil {
			s.Close()
			t.Fatalf("append: %v", err)
		}
		got, err := s.Peek("t", 1<<16)
		if err != nil || len(got) == 0 || got[len(got)-1].Output != mark.Output {
			s.Close()
			t.Fatalf("the result appended is not the last one to send: %d entries, %v", len(got), err)
		}
		if err := s.Ack("t", got[len(got)-1].Seq); err != nil {
			s.Close()
			t.Fatalf("ack: %v", err)
		}
		if n := s.Pending("t"); n != 0 {
			t.Errorf("%d pending after acknowledging everything", n)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s, err = OpenSpool(dir, 1<<20, []string{"t"}, log)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer s.Close()
		if again, err := s.Peek("t", 1<<16); err != nil || len(again) != 0 {
			t.Fatalf("after a restart, %d acknowledged entries are sent again (%v)", len(again), err)
		}
	})
}
