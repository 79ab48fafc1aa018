package admin

// Test hooks: what the tests may see of the server's state.

// count is how many connections are new or active.
func (u *unanswered) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.conns)
}
