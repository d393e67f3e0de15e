package subprocess

// Buffer keeps a bounded part of what is written to it, the first Max
// bytes or with Tail the last Max, and counts the rest, so that a program
// that prints without end never blocks on a full pipe nor fills memory.
// Writes never fail.
type Buffer struct {
	Max int
	// Tail keeps the end rather than the start: where a failing
	// program's reason is.
	Tail  bool
	buf   []byte
	total int64
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.total += int64(len(p))
	switch {
	case !b.Tail:
		if room := b.Max - len(b.buf); room > 0 {
			b.buf = append(b.buf, p[:min(room, len(p))]...)
		}
	case len(p) >= b.Max:
		b.buf = append(b.buf[:0], p[len(p)-b.Max:]...)
	default:
		if over := len(b.buf) + len(p) - b.Max; over > 0 {
			b.buf = append(b.buf[:0], b.buf[over:]...)
		}
		b.buf = append(b.buf, p...)
	}
	return len(p), nil
}

// String is what was kept.
func (b *Buffer) String() string { return string(b.buf) }

// Total is how many bytes were written, kept or not.
func (b *Buffer) Total() int64 { return b.total }

// Dropped is how many bytes were written and not kept.
func (b *Buffer) Dropped() int64 { return b.total - int64(len(b.buf)) }
