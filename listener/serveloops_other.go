//go:build !linux

package listener

import "errors"

// listenFD fails here: only Linux accepts in the forwarder's loops.
func listenFD(controller) (int, error) {
	return -1, errors.New("accepting in the loops needs Linux")
}

// closeFD does nothing: listenFD gives no descriptor here.
func closeFD(int) {}

// dropGoListener does nothing here: the loops serve no socket.
func (g *Gate) dropGoListener() {}
