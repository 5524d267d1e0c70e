package etcdsd

// Ready implements ready.Readiness: ready once every zone's first complete list is in.
func (e *Etcdsd) Ready() bool {
	for _, w := range e.watchers {
		if w.snapshot() == nil {
			return false
		}
	}
	return true
}
