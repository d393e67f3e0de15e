package nrpe

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.Join(strings.Fields(string(text)), ""))
	if err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	return b
}

const perfOutput = "OK all good|a=1;2;3 b=4s\nline two\nline three|c=5"

func TestReadPacketFixtures(t *testing.T) {
	tests := []struct {
		file string
		want Packet
	}{
		{"check_nrpe-v4-query.hex", Packet{V4, Query, 0, "check_load"}},
		{"check_nrpe-v2-query.hex", Packet{V2, Query, 0x433d, "check_load"}},
		{"check_nrpe-v4-query-args.hex", Packet{V4, Query, 0, "check_load!one!two"}},
		{"check_nrpe-v3-query.hex", Packet{V3, Query, 0, "ok"}},
		{"nrpe-v4-response-hello.hex", Packet{V4, Response, 0, "NRPE v4.1.0"}},
		{"nrpe-v4-response-undefined.hex", Packet{V4, Response, 3, "NRPE: Command 'check_load' not defined"}},
		{"nrpe-v4-response-perf.hex", Packet{V4, Response, 0, perfOutput}},
		{"nrpe-v2-response-undefined.hex", Packet{V2, Response, 3, "NRPE: Command 'check_load' not defined"}},
		{"immune-v2-response-warning.hex", Packet{V2, Response, 1, "WARNING - load average: 4.20|load1=4.2;4;8;0"}},
		{"immune-v3-response-ok.hex", Packet{V3, Response, 0, "OK: hello"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			r := bytes.NewReader(fixture(t, tt.file))
			got, err := ReadPacket(r, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
			// Only a v3 sender's 3 bytes of trailing padding may stay unread.
			left := r.Len()
			if tt.want.Version == V3 && left != v3Trailer || tt.want.Version != V3 && left != 0 {
				t.Errorf("%d bytes left unread", left)
			}
		})
	}
}

// TestEncodeGolden pins our bytes to Debian's daemon where it pads with
// zeros (v4) and to the independently written fixtures elsewhere.
func TestEncodeGolden(t *testing.T) {
	tests := []struct {
		file string
		p    Packet
	}{
		{"nrpe-v4-response-hello.hex", Packet{V4, Response, 0, "NRPE v4.1.0"}},
		{"nrpe-v4-response-undefined.hex", Packet{V4, Response, 3, "NRPE: Command 'check_load' not defined"}},
		{"nrpe-v4-response-perf.hex", Packet{V4, Response, 0, perfOutput}},
		{"immune-v2-response-warning.hex", Packet{V2, Response, 1, "WARNING - load average: 4.20|load1=4.2;4;8;0"}},
		{"immune-v3-response-ok.hex", Packet{V3, Response, 0, "OK: hello"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := tt.p.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if want := fixture(t, tt.file); !bytes.Equal(got, want) {
				t.Errorf("encode %+v:\n got %x\nwant %x", tt.p, got, want)
			}
			var w bytes.Buffer
			n, err := tt.p.WriteTo(&w)
			if err != nil || n != int64(len(got)) || !bytes.Equal(w.Bytes(), got) {
				t.Errorf("WriteTo wrote %d bytes, err %v; want the %d bytes of Encode", n, err, len(got))
			}
		})
	}
}

func TestEncodeRefuses(t *testing.T) {
	tests := []struct {
		p    Packet
		want error
	}{
		{Packet{Version: 1, Type: Query}, ErrVersion},
		{Packet{Version: 5, Type: Response}, ErrVersion},
		{Packet{Version: V4, Type: 0}, ErrType},
		{Packet{Version: V2, Type: 3}, ErrType},
	}
	for _, tt := range tests {
		if _, err := tt.p.Encode(); !errors.Is(err, tt.want) {
			t.Errorf("Encode(%+v) = %v, want %v", tt.p, err, tt.want)
		}
		if _, err := tt.p.WriteTo(io.Discard); !errors.Is(err, tt.want) {
			t.Errorf("WriteTo(%+v) = %v, want %v", tt.p, err, tt.want)
		}
	}
}

func TestReadPacketErrors(t *testing.T) {
	v4 := fixture(t, "nrpe-v4-response-perf.hex")
	v2 := fixture(t, "nrpe-v2-response-undefined.hex")
	mutate := func(b []byte, f func([]byte)) []byte {
		c := bytes.Clone(b)
		f(c)
		return c
	}
	setLen := func(n uint32) func([]byte) {
		return func(b []byte) { binary.BigEndian.PutUint32(b[12:16], n) }
	}
	tests := []struct {
		name      string
		in        []byte
		maxBuffer int
		want      error
		text      string
	}{
		{"empty", nil, 0, io.EOF, "EOF"},
		{"short header", v4[:7], 0, io.ErrUnexpectedEOF, "header"},
		{"short v4 header", v4[:12], 0, io.ErrUnexpectedEOF, "v4 response header"},
		{"short v4 buffer", v4[:len(v4)-1], 0, io.ErrUnexpectedEOF, "buffer (49 bytes)"},
		{"short v2", v2[:1035], 0, io.ErrUnexpectedEOF, "v2 response"},
		{"v4 text flipped", mutate(v4, func(b []byte) { b[20] ^= 1 }), 0, ErrCRC, "v4 response: NRPE packet CRC32 mismatch: packet says ec4f5f4b, its bytes give"},
		{"v4 crc flipped", mutate(v4, func(b []byte) { b[7] ^= 0x80 }), 0, ErrCRC, "packet says ec4f5fcb"},
		{"v2 padding flipped", mutate(v2, func(b []byte) { b[1035] ^= 1 }), 0, ErrCRC, "v2 response"},
		{"v2 result code flipped", mutate(v2, func(b []byte) { b[9] = 0 }), 0, ErrCRC, "CRC32"},
		{"version 1", mutate(v2, func(b []byte) { b[1] = 1 }), 0, ErrVersion, "version 1"},
		{"version 5", mutate(v4, func(b []byte) { b[1] = 5 }), 0, ErrVersion, "version 5"},
		{"type 0", mutate(v4, func(b []byte) { b[3] = 0 }), 0, ErrType, "type 0"},
		{"type 3", mutate(v2, func(b []byte) { b[3] = 3 }), 0, ErrType, "type 3"},
		{"negative length", mutate(v4, setLen(0xffffffff)), 0, ErrLength, "length -1"},
		{"huge length", mutate(v4, setLen(0x7fffffff)), 0, ErrLength, "length 2147483647 (limit 65536)"},
		{"over protocol limit", mutate(v4, setLen(MaxBuffer+1)), 1 << 20, ErrLength, "limit 65536"},
		{"over caller's limit", v4, 48, ErrLength, "length 49 (limit 48)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ReadPacket(bytes.NewReader(tt.in), tt.maxBuffer)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %+v, %v; want error %v", p, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %q does not say %q", err, tt.text)
			}
		})
	}
}

// TestReadPacketLyingLength checks a length field is refused before any
// buffer of that size is made.
func TestReadPacketLyingLength(t *testing.T) {
	hdr := make([]byte, HeaderSize)
	binary.BigEndian.PutUint16(hdr[0:2], uint16(V4))
	binary.BigEndian.PutUint16(hdr[2:4], uint16(Query))
	binary.BigEndian.PutUint32(hdr[12:16], 0x7ffffff0)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := ReadPacket(bytes.NewReader(hdr), 0)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrLength) {
		t.Fatalf("got %v, want ErrLength", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("allocated %d bytes reading a lying header", grew)
	}
}

func TestRoundTrip(t *testing.T) {
	long := strings.Repeat("x", 70000)
	// "é" is 2 bytes: placed to straddle byte 1023 so the v2 cut must back up.
	straddle := strings.Repeat("a", V2MaxText-1) + "é" + "tail"
	tests := []struct {
		name   string
		text   string
		wantV2 string
		wantV4 string
	}{
		{"empty", "", "", ""},
		{"perfdata and long output", perfOutput, perfOutput, perfOutput},
		{"exactly v2 size", long[:V2MaxText], long[:V2MaxText], long[:V2MaxText]},
		{"one over v2", long[:V2MaxText+1], long[:V2MaxText], long[:V2MaxText+1]},
		{"40 KiB", long[:40<<10], long[:V2MaxText], long[:40<<10]},
		{"over v4", long, long[:V2MaxText], long[:MaxText]},
		{"utf-8 at the v2 cut", straddle, straddle[:V2MaxText-1], straddle},
		{"embedded NUL", "OK\x00hidden", "OK", "OK"},
	}
	for _, tt := range tests {
		for _, v := range []Version{V2, V3, V4} {
			for _, typ := range []Type{Query, Response} {
				in := Packet{Version: v, Type: typ, ResultCode: 2, Buffer: tt.text}
				b, err := in.Encode()
				if err != nil {
					t.Fatalf("%s %s %s: %v", tt.name, v, typ, err)
				}
				want := in
				want.Buffer = tt.wantV4
				if v == V2 {
					want.Buffer = tt.wantV2
				}
				got, err := ReadPacket(bytes.NewReader(b), 0)
				if err != nil {
					t.Fatalf("%s %s %s: %v", tt.name, v, typ, err)
				}
				if got != want {
					t.Errorf("%s %s %s: read back %d bytes %.40q, want %d bytes %.40q",
						tt.name, v, typ, len(got.Buffer), got.Buffer, len(want.Buffer), want.Buffer)
				}
			}
		}
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 5, "hello"},
		{"hello", 3, "hel"},
		{"hello", 0, ""},
		{"héllo", 2, "h"},                               // would split é
		{"h€llo", 3, "h"},                               // € is 3 bytes; cut after 2 of them
		{"h€llo", 4, "h€"},                              // whole
		{"\x80\x80\x80\x80\x80", 4, "\x80\x80\x80\x80"}, // not UTF-8: plain byte cut
		{"ab\x00cd", 10, "ab"},
	}
	for _, tt := range tests {
		if got := Truncate(tt.in, tt.max); got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

func FuzzReadPacket(f *testing.F) {
	files, err := filepath.Glob("testdata/*.hex")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		f.Add(fixture(f, filepath.Base(file)))
	}
	f.Add([]byte{0, 4, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 4096
		p, err := ReadPacket(bytes.NewReader(data), limit)
		if err != nil {
			return
		}
		if len(p.Buffer) > limit || strings.IndexByte(p.Buffer, 0) >= 0 {
			t.Fatalf("read %d-byte buffer with NUL at %d", len(p.Buffer), strings.IndexByte(p.Buffer, 0))
		}
		b, err := p.Encode()
		if err != nil {
			t.Fatalf("re-encode %+v: %v", p, err)
		}
		again, err := ReadPacket(bytes.NewReader(b), 0)
		if err != nil {
			t.Fatalf("read back %+v: %v", p, err)
		}
		if again != p {
			t.Fatalf("round trip changed the packet:\n got %+v\nwant %+v", again, p)
		}
	})
}
