package catalog

// TakeSearchSlots takes n slots of c's search gate (all of them when n < 0), as
// searches running would, and returns how many it took and what gives them back.
func TakeSearchSlots(c *Catalog, n int) (int, func()) {
	g := &c.web().gate
	g.once.Do(func() { g.slots = make(chan struct{}, searchSlots()) })
	if n < 0 || n > cap(g.slots) {
		n = cap(g.slots)
	}
	for range n {
		g.slots <- struct{}{}
	}
	return n, func() {
		for range n {
			<-g.slots
		}
	}
}
