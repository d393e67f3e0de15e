package nagios

import (
	"encoding/json"
	"testing"
)

func TestStates(t *testing.T) {
	for code, name := range []string{"OK", "WARNING", "CRITICAL", "UNKNOWN"} {
		s := StateFromExit(code)
		if s.String() != name || s.ExitCode() != code {
			t.Errorf("exit %d: %s/%d", code, s, s.ExitCode())
		}
		back, err := ParseState(name)
		if err != nil || back != s {
			t.Errorf("ParseState(%q) = %v, %v", name, back, err)
		}
	}
	for _, code := range []int{-1, 4, 127, 255} {
		if s := StateFromExit(code); s != Unknown {
			t.Errorf("StateFromExit(%d) = %s; want UNKNOWN", code, s)
		}
	}
	if _, err := ParseState("bad"); err == nil {
		t.Error("ParseState(bad) gave no error")
	}
}

func TestWorst(t *testing.T) {
	tests := []struct {
		in   []State
		want State
	}{
		{nil, OK},
		{[]State{OK, OK}, OK},
		{[]State{OK, Unknown}, Unknown},
		{[]State{Unknown, Warning}, Warning},
		{[]State{Warning, Critical, Unknown}, Critical},
		{[]State{State(9)}, Unknown},
	}
	for _, tt := range tests {
		if got := Worst(tt.in...); got != tt.want {
			t.Errorf("Worst(%v) = %s; want %s", tt.in, got, tt.want)
		}
	}
}

func TestStateJSON(t *testing.T) {
	b, err := json.Marshal(map[string]State{"s": Critical})
	if err != nil || string(b) != `{"s":"CRITICAL"}` {
		t.Fatalf("marshal: %s, %v", b, err)
	}
	var back map[string]State
	if err := json.Unmarshal(b, &back); err != nil || back["s"] != Critical {
		t.Fatalf("unmarshal: %v, %v", back, err)
	}
}
