package coldset

import "testing"

// TestColdSearchesDistinct: the cold mode's promise is that no search URL repeats.
func TestColdSearchesDistinct(t *testing.T) {
	seen := map[string]int{}
	for i := 0; i < 7000; i++ {
		u := Search(i)
		if j, ok := seen[u]; ok {
			t.Fatalf("search %d repeats search %d: %s", i, j, u)
		}
		seen[u] = i
	}
}
