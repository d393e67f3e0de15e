package faults

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// slowLink carries Ethernet frames between two links of the root
// namespace through packet sockets, each frame delayed by delay (in
// order, as netem's constant delay keeps it) and dropped with probability
// loss: what `tc qdisc add ... netem delay D loss L` does on both ends,
// for kernels built without sch_netem.
type slowLink struct {
	delay time.Duration
	loss  float64
	done  chan struct{}
	wg    sync.WaitGroup
	fds   []int
	// links are made for the slow link and deleted with it.
	links []string
}

type frame struct {
	data []byte
	due  time.Time
}

func startSlowLink(a, b string, delay time.Duration, loss float64) (*slowLink, error) {
	s := &slowLink{delay: delay, loss: loss, done: make(chan struct{})}
	fa, ia, err := packetSocket(a)
	if err != nil {
		return nil, err
	}
	s.fds = append(s.fds, fa)
	fb, ib, err := packetSocket(b)
	if err != nil {
		unix.Close(fa)
		return nil, err
	}
	s.fds = append(s.fds, fb)
	s.pump(fa, fb, ib)
	s.pump(fb, fa, ia)
	return s, nil
}

// packetSocket opens a packet socket bound to the link, that does not
// read back the frames it sends, and whose reads wake every 100 ms to see
// whether the link is being stopped.
func packetSocket(link string) (int, int, error) {
	ifc, err := net.InterfaceByName(link)
	if err != nil {
		return 0, 0, fmt.Errorf("slow link: %w", err)
	}
	proto := int(htons(unix.ETH_P_ALL))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, proto)
	if err != nil {
		return 0, 0, fmt.Errorf("slow link: packet socket: %w", err)
	}
	fail := func(what string, err error) (int, int, error) {
		unix.Close(fd)
		return 0, 0, fmt.Errorf("slow link on %s: %s: %w", link, what, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index}); err != nil {
		return fail("bind", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return fail("ignore outgoing", err)
	}
	// A veth hands over TCP segments of up to 64 KB with their checksums
	// left to the hardware: with the virtio header before each frame the
	// kernel says so on read and does that work on write.
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return fail("virtio header", err)
	}
	tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fail("receive timeout", err)
	}
	return fd, ifc.Index, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// pump reads frames from one socket and, after the delay, writes the
// frames not dropped to the other.
func (s *slowLink) pump(from, to, toIndex int) {
	queue := make(chan frame, 4096)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		defer close(queue)
		buf := make([]byte, 65536)
		for {
			select {
			case <-s.done:
				return
			default:
			}
			n, _, err := unix.Recvfrom(from, buf, 0)
			if err != nil || n <= 0 {
				continue // the timeout, to look at done
			}
			if rand.Float64() < s.loss {
				continue
			}
			f := frame{data: append([]byte(nil), buf[:n]...), due: time.Now().Add(s.delay)}
			select {
			case queue <- f:
			default: // a full queue drops, as a full netem queue does
			}
		}
	}()
	go func() {
		defer s.wg.Done()
		addr := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: toIndex}
		for f := range queue {
			if wait := time.Until(f.due); wait > 0 {
				select {
				case <-s.done:
					continue
				case <-time.After(wait):
				}
			}
			unix.Sendto(to, f.data, 0, addr)
		}
	}()
}

func (s *slowLink) stop() {
	close(s.done)
	s.wg.Wait()
	for _, fd := range s.fds {
		unix.Close(fd)
	}
}
