package catalog

// TakeSearchSlots takes n slots of c's search gate (all of them when n < 0), as
// searches running would, and returns how many it took and what gives them back.
func TakeSearchSlots(c *Catalog, n int) (int, func()) {
	slots := c.web().gate.ch()
	if n < 0 || n > cap(slots) {
		n = cap(slots)
	}
	for range n {
		slots <- struct{}{}
	}
	return n, func() {
		for range n {
			<-slots
		}
	}
}
