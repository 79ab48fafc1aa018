//go:build !failpoints

package handover

// hook is the failpoint of a step of the handover: nothing in a build
// without the failpoints tag, which the compiler removes (failpoint.go has
// the real one).
func hook(string) {}
