package upstream

// Test hooks: what the tests may see of the health checkers.

// running returns how many checkers run.
func (cs *Checkers) running() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.byKey)
}

// streakNow returns the checker's streak.
func (c *checker) streakNow() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streak
}
