package forward

// Plaintext HTTP/2 (all of etcd's gRPC without TLS) lets the gateway end a
// connection without failing a request: a GOAWAY frame tells the client
// to send its new requests on a new connection and to close this one
// once its streams end, as gRPC's MAX_CONNECTION_AGE does (proposal A9).
// A GOAWAY may only go between two of the member's frames, so the engine
// follows the frame boundaries of what it writes to the client.

// h2Preface is what an HTTP/2 client sends first (RFC 9113, 3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// h2FrameHeader is the size of an HTTP/2 frame header: a 24-bit length, a
// type, flags and a stream id.
const h2FrameHeader = 9

// h2GoAway is the GOAWAY frame the gateway sends: stream 0, the highest
// last-stream-id (every stream the client opened is served) and
// NO_ERROR. A constant, so that nothing can change it.
const h2GoAway = "\x00\x00\x08\x07\x00\x00\x00\x00\x00" + // length 8, GOAWAY, no flags, stream 0
	"\x7f\xff\xff\xff" + // last-stream-id 2^31-1
	"\x00\x00\x00\x00" // NO_ERROR

// What a connection's first bytes said it speaks.
const (
	h2Unknown = iota // not enough bytes yet
	h2Yes            // plaintext HTTP/2, its frames followed
	h2No             // anything else, or frames no longer followed
)

// h2Conn follows a connection's HTTP/2 framing: the client's preface, and
// the frames the member writes to the client, so that a GOAWAY goes in
// between two. Its engine's writer owns it: the loop's thread, or the
// copy's writer under its lock.
type h2Conn struct {
	state   int8
	matched int // bytes of the preface the client sent so far
	hdr     [h2FrameHeader]byte
	inHdr   int  // bytes of the current frame's header written
	left    int  // bytes of the current frame's payload not written yet
	asked   bool // a GOAWAY is wanted
	out     int  // bytes of the GOAWAY written, once asked
}

// fromClient reads the client's first bytes for the preface; it reports
// whether they decided what the connection speaks.
func (h *h2Conn) fromClient(b []byte) bool {
	if h.state != h2Unknown {
		return false
	}
	n := min(len(b), len(h2Preface)-h.matched)
	switch {
	case string(b[:n]) != h2Preface[h.matched:h.matched+n]:
		h.state = h2No
	case h.matched+n == len(h2Preface):
		h.state = h2Yes
	default:
		h.matched += n
		return false
	}
	return true
}

// prefaceSeen is fromClient, reporting whether b completed the preface:
// from then on the connection may be sent a GOAWAY.
func (h *h2Conn) prefaceSeen(b []byte) bool { return h.fromClient(b) && h.state == h2Yes }

// following reports whether the frames to the client are followed: for an
// HTTP/2 connection, or one not decided yet.
func (h *h2Conn) following() bool { return h.state != h2No }

// toClient follows the frames in b, bytes just written to the client.
func (h *h2Conn) toClient(b []byte) {
	for len(b) > 0 {
		if h.left > 0 {
			n := min(h.left, len(b))
			h.left -= n
			b = b[n:]
			continue
		}
		n := copy(h.hdr[h.inHdr:], b)
		h.inHdr += n
		b = b[n:]
		if h.inHdr == h2FrameHeader {
			h.left = int(h.hdr[0])<<16 | int(h.hdr[1])<<8 | int(h.hdr[2])
			h.inHdr = 0
		}
	}
}

// untilBoundary is how many bytes to the client may go before the next
// frame boundary; 0 at one. Within a header it is the header's rest: the
// payload's length is known only once the header is whole.
func (h *h2Conn) untilBoundary() int {
	if h.inHdr > 0 {
		return h2FrameHeader - h.inHdr
	}
	return h.left
}

// goAwayDue reports whether the GOAWAY is to be written now: asked, not
// all written, and at a frame boundary.
func (h *h2Conn) goAwayDue() bool {
	return h.asked && h.out < len(h2GoAway) && h.untilBoundary() == 0
}

// goAwayHeld reports whether the member's bytes wait for the GOAWAY: a
// writer then writes them only up to the next boundary.
func (h *h2Conn) goAwayHeld() bool { return h.asked && h.out < len(h2GoAway) }
