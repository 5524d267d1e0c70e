package etcdsd

// Ready implements ready.Readiness: ready once the first complete list is in the index.
func (e *Etcdsd) Ready() bool { return e.w.snapshot() != nil }
