// Package nrpe reads and writes the packets of NRPE, the protocol Nagios's
// check_nrpe uses to ask a remote daemon to run a check.
//
// Every packet starts with the same 10 bytes, big-endian: version (int16),
// type (int16: 1 query, 2 response), CRC-32 (uint32) and result code (int16).
//
// Version 2 follows them with a fixed 1024-byte, NUL-terminated buffer and
// the 2 bytes of padding a C compiler puts after it: 1036 bytes in all, every
// one of them covered by the CRC.
//
// Versions 3 and 4 follow them with an alignment field (int16, sent and
// checked as zero) and a buffer length (int32, NUL included, at most 64 KiB),
// then the buffer: a 16-byte header. They differ only in the C struct
// padding their authors counted: a v4 packet is exactly header and buffer,
// while a v3 packet's CRC also covers 3 zero bytes after the buffer, which v3
// senders put on the wire too.
//
// The CRC is the IEEE CRC-32 of the packet with its CRC field (and, in
// v3/v4, its alignment field) set to zero.
package nrpe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"unicode/utf8"
)

// Version is a packet's protocol version.
type Version uint16

// The packet versions in use. Version 1 is long obsolete and not read.
const (
	V2 Version = 2
	V3 Version = 3
	V4 Version = 4
)

// Type says whether a packet asks or answers.
type Type uint16

// The two packet types.
const (
	Query    Type = 1
	Response Type = 2
)

// Sizes fixed by the protocol.
const (
	// V2Size is the size of every v2 packet on the wire.
	V2Size = 1036
	// V2MaxText is the longest text a v2 buffer carries: 1024 bytes less the NUL.
	V2MaxText = 1023
	// HeaderSize is the v3/v4 header in front of the variable buffer.
	HeaderSize = 16
	// MaxBuffer is the largest v3/v4 buffer, NUL included, that check_nrpe
	// and the NRPE daemon accept.
	MaxBuffer = 64 * 1024
	// MaxText is the longest text a v3/v4 buffer carries.
	MaxText = MaxBuffer - 1

	commonSize = 10
	v2BufSize  = 1024
	v3Trailer  = 3
)

// Errors ReadPacket wraps with the details of what it read; test with errors.Is.
var (
	ErrVersion = errors.New("unsupported NRPE packet version")
	ErrType    = errors.New("invalid NRPE packet type")
	ErrCRC     = errors.New("NRPE packet CRC32 mismatch")
	ErrLength  = errors.New("invalid NRPE buffer length")
)

// Packet is one NRPE query or response.
type Packet struct {
	Version Version
	Type    Type
	// ResultCode is the check's exit code in a response; queries carry no meaning here.
	ResultCode int16
	// Buffer is the query ("command!arg1!arg2") or the check's output, without the NUL.
	Buffer string
}

// String names the packet for logs and test failures.
func (v Version) String() string { return fmt.Sprintf("v%d", uint16(v)) }

// String names the packet type.
func (t Type) String() string {
	switch t {
	case Query:
		return "query"
	case Response:
		return "response"
	}
	return fmt.Sprintf("type %d", uint16(t))
}

// MaxTextLen is the longest Buffer a packet of version v carries; Encode
// cuts longer ones.
func MaxTextLen(v Version) int {
	if v == V2 {
		return V2MaxText
	}
	return MaxText
}

// Encode returns the packet's wire bytes. A Buffer longer than the version
// carries is cut (at a UTF-8 boundary when one is within 3 bytes) and
// anything after a NUL is dropped, because the reader stops there.
func (p Packet) Encode() ([]byte, error) {
	if p.Type != Query && p.Type != Response {
		return nil, fmt.Errorf("encode NRPE packet: %w %d", ErrType, uint16(p.Type))
	}
	text := Truncate(p.Buffer, MaxTextLen(p.Version))
	var b []byte
	switch p.Version {
	case V2:
		b = make([]byte, V2Size)
		copy(b[commonSize:], text)
	case V3, V4:
		size := HeaderSize + len(text) + 1
		if p.Version == V3 {
			size += v3Trailer
		}
		b = make([]byte, size)
		binary.BigEndian.PutUint32(b[12:16], uint32(len(text)+1))
		copy(b[HeaderSize:], text)
	default:
		return nil, fmt.Errorf("encode NRPE packet: %w %d", ErrVersion, uint16(p.Version))
	}
	binary.BigEndian.PutUint16(b[0:2], uint16(p.Version))
	binary.BigEndian.PutUint16(b[2:4], uint16(p.Type))
	binary.BigEndian.PutUint16(b[8:10], uint16(p.ResultCode))
	binary.BigEndian.PutUint32(b[4:8], crc32.ChecksumIEEE(b))
	return b, nil
}

// WriteTo writes the encoded packet to w in one Write, so a TLS connection
// sends it as one record where it fits.
func (p Packet) WriteTo(w io.Writer) (int64, error) {
	b, err := p.Encode()
	if err != nil {
		return 0, err
	}
	n, err := w.Write(b)
	if err != nil {
		return int64(n), fmt.Errorf("write NRPE %s %s: %w", p.Version, p.Type, err)
	}
	return int64(n), nil
}

// Truncate cuts s to at most max bytes and at its first NUL. When the cut
// would split a UTF-8 sequence it backs up to the sequence's start, so the
// text stays readable; the backing up is bounded so invalid text is cut at
// most 3 bytes short.
func Truncate(s string, max int) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	if len(s) <= max {
		return s
	}
	cut := max
	for back := 0; back < utf8.UTFMax-1 && cut > 0 && !utf8.RuneStart(s[cut]); back++ {
		cut--
	}
	if !utf8.RuneStart(s[cut]) {
		cut = max
	}
	return s[:cut]
}

// ReadPacket reads one packet of any supported version and checks its CRC.
// maxBuffer caps the v3/v4 buffer length it will accept (and so allocate);
// 0 or anything above MaxBuffer means MaxBuffer. It reads exactly the bytes
// of the packet: the 3 trailing bytes a v3 sender adds are left unread, since
// they are padding, not data, and a sender may leave them out.
func ReadPacket(r io.Reader, maxBuffer int) (Packet, error) {
	if maxBuffer <= 0 || maxBuffer > MaxBuffer {
		maxBuffer = MaxBuffer
	}
	var common [commonSize]byte
	if _, err := io.ReadFull(r, common[:]); err != nil {
		if err == io.EOF {
			return Packet{}, err
		}
		return Packet{}, fmt.Errorf("read NRPE packet header: %w", err)
	}
	p := Packet{
		Version:    Version(binary.BigEndian.Uint16(common[0:2])),
		Type:       Type(binary.BigEndian.Uint16(common[2:4])),
		ResultCode: int16(binary.BigEndian.Uint16(common[8:10])),
	}
	if p.Version != V2 && p.Version != V3 && p.Version != V4 {
		return Packet{}, fmt.Errorf("read NRPE packet: %w %d", ErrVersion, uint16(p.Version))
	}
	if p.Type != Query && p.Type != Response {
		return Packet{}, fmt.Errorf("read NRPE %s packet: %w %d", p.Version, ErrType, uint16(p.Type))
	}
	want := binary.BigEndian.Uint32(common[4:8])

	var b []byte
	var text []byte
	switch p.Version {
	case V2:
		b = make([]byte, V2Size)
		copy(b, common[:])
		if _, err := io.ReadFull(r, b[commonSize:]); err != nil {
			return Packet{}, fmt.Errorf("read NRPE v2 %s: %w", p.Type, noEOF(err))
		}
		// The sender NUL-terminates at byte 1023 whatever it filled in.
		text = b[commonSize : commonSize+V2MaxText]
	default: // V3 and V4, checked above
		var rest [HeaderSize - commonSize]byte
		if _, err := io.ReadFull(r, rest[:]); err != nil {
			return Packet{}, fmt.Errorf("read NRPE %s %s header: %w", p.Version, p.Type, noEOF(err))
		}
		n := int32(binary.BigEndian.Uint32(rest[2:6]))
		if n < 0 || int64(n) > int64(maxBuffer) {
			return Packet{}, fmt.Errorf("read NRPE %s %s: %w %d (limit %d)", p.Version, p.Type, ErrLength, n, maxBuffer)
		}
		size := HeaderSize + int(n)
		if p.Version == V3 {
			size += v3Trailer
		}
		b = make([]byte, size)
		copy(b, common[:])
		copy(b[commonSize:], rest[:])
		if _, err := io.ReadFull(r, b[HeaderSize:HeaderSize+int(n)]); err != nil {
			return Packet{}, fmt.Errorf("read NRPE %s %s buffer (%d bytes): %w", p.Version, p.Type, n, noEOF(err))
		}
		b[10], b[11] = 0, 0
		text = b[HeaderSize : HeaderSize+int(n)]
	}
	b[4], b[5], b[6], b[7] = 0, 0, 0, 0
	if got := crc32.ChecksumIEEE(b); got != want {
		return Packet{}, fmt.Errorf("read NRPE %s %s: %w: packet says %08x, its bytes give %08x", p.Version, p.Type, ErrCRC, want, got)
	}
	if i := bytes.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	p.Buffer = string(text)
	return p, nil
}

// noEOF reports a packet cut short as such: a clean EOF after its first
// bytes still means the packet is incomplete.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
