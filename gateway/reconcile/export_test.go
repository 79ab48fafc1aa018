package reconcile

// Test hooks: what the tests may see of the running sources.

// stopped reports whether the refresh was stopped.
func (r *srvRefresh) stopped() bool { return r.ctx.Err() != nil }
