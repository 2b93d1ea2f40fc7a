package engine

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"strings"
	"unsafe"
)

// litSet reports which of a set of folded literals occur in a folded text: the
// prefilter of one field in one bucket.
//
// An Aho-Corasick DFA over all of them was the first design; its scan is one dependent
// table load per byte, and the tables outgrew the caches: the CommandLine literals of
// process_creation made 70,000 states times a 153-byte alphabet (windash's dashes and
// UTF-16's bytes), 40 MB, a cache miss per byte. Now each literal of four bytes or more
// is represented by one of its 4-byte windows, chosen to be rare (see windowFreq); the
// scan hashes every 4-byte window of the text into a bitmap of a few KB and, only on a
// set bit, looks the window up and compares the literals anchored there. Shorter
// literals (".js", "-e") are found the same way by their first two bytes (a bitmap
// indexed by them, no hash) or their one byte. Positions are independent, so the loop
// pipelines instead of waiting on memory: on the regression events this halved the
// time per event, and it beat the DFA on the small sets as well.
type litSet struct {
	long     winTable // literals of winLen bytes or more, by their anchor window
	longBits []uint64 // bit (w*winMul)>>longSh set when some anchor hashes there
	// longBits2 is a second bitmap, on another hash (w*winMul2), tested only when the
	// first bit is set: about 3% of a text's windows pass the first, and looking each
	// up in the table (a cache miss for the slot, most often to find nothing) was
	// half of the verification's time.
	longBits2 []uint64
	longSh    uint32
	longMask  uint32
	short     winTable // literals of 2 or 3 bytes, by their first two bytes
	shortBit  *[1 << 10]uint64
	one       *[256][]int32 // one-byte literals
	// stride > 1: every literal has at least stride+3 bytes, so each occurrence covers
	// stride consecutive window positions, one of them a multiple of stride. Each literal
	// is then anchored at stride consecutive windows, and scanField tests only every
	// stride-th position. Keyword literals ("sekurlsa::", "\\mimilib.dll"), searched in
	// every field of every event, make such sets.
	stride int
	minLen int // bytes of the shortest literal
}

// maxStride bounds the anchors per literal (and so the bitmap's load).
const maxStride = 8

// winTable finds the literals anchored at a window (open addressing on w*winMul).
type winTable struct {
	slots []winSlot
	sh    uint32
	mask  uint32
	ents  []winEnt
}

// win4 reads the 4-byte window of s at i, first byte lowest.
func win4(s string, i int) uint32 {
	return uint32(s[i]) | uint32(s[i+1])<<8 | uint32(s[i+2])<<16 | uint32(s[i+3])<<24
}

// winFreq estimates, for every 4-byte window, how many rule literals contain it.
// Rule literals are drawn from the same paths, command lines and registry keys that
// logs carry, so a window shared by many literals (".exe", "\win") is common in logs
// too, and one no other literal has is a good anchor. Counts are kept in a hashed table
// (colliding windows add up), which is enough for choosing and costs a few milliseconds
// where a map of the 100,000 windows cost 150.
type winFreq []uint16

const winFreqBits = 20

func windowFreq(lits []litKey) winFreq {
	f := make(winFreq, 1<<winFreqBits)
	for _, k := range lits {
		for i := 0; i+winLen <= len(k.s); i++ {
			h := (win4(k.s, i) * winMul) >> (32 - winFreqBits)
			if f[h] < 1<<16-1 {
				f[h]++
			}
		}
	}
	return f
}

func (f winFreq) of(w uint32) uint16 { return f[(w*winMul)>>(32-winFreqBits)] }

// newLitSet builds the set; literal i is reported as ids[i].
func newLitSet(pats []string, ids []int32, freq winFreq) *litSet {
	ls := &litSet{stride: 1, minLen: 1 << 30}
	for _, p := range pats {
		ls.minLen = min(ls.minLen, len(p))
	}
	if len(pats) > 0 && ls.minLen >= winLen+1 {
		ls.stride = min(ls.minLen-(winLen-1), maxStride)
	}
	long := map[uint32][]winEnt{}
	short := map[uint32][]winEnt{}
	for i, p := range pats {
		switch {
		case len(p) == 0:
		case len(p) == 1:
			if ls.one == nil {
				ls.one = new([256][]int32)
			}
			ls.one[p[0]] = append(ls.one[p[0]], ids[i])
		case len(p) < winLen:
			k := uint32(p[0]) | uint32(p[1])<<8
			short[k] = append(short[k], winEnt{lit: p, id: ids[i]})
		default:
			// The stride consecutive windows from best, chosen the rarest in sum.
			sd := ls.stride
			best, bestF := 0, 1<<30
			for j := 0; j+winLen-1+sd <= len(p); j++ {
				f := 0
				for k := j; k < j+sd; k++ {
					f += int(freq.of(win4(p, k)))
				}
				// Later windows win ties: prefixes such as "c:\" and "\win" are shared more.
				if f <= bestF {
					best, bestF = j, f
				}
			}
			for k := best; k < best+sd; k++ {
				w := win4(p, k)
				long[w] = append(long[w], winEnt{lit: p, off: int32(k), id: ids[i]})
			}
		}
	}
	if len(long) > 0 {
		// About 32 bits per anchor keeps a random window's false-positive rate near 3%.
		bl := bits.Len(uint(len(long)*32 - 1))
		bl = max(12, min(bl, 22))
		ls.longBits = make([]uint64, 1<<(bl-6))
		ls.longBits2 = make([]uint64, 1<<(bl-6))
		ls.longSh = uint32(32 - bl)
		ls.longMask = uint32(len(ls.longBits) - 1)
		for w := range long {
			b := (w * winMul) >> ls.longSh
			ls.longBits[b>>6] |= 1 << (b & 63)
			b = (w * winMul2) >> ls.longSh
			ls.longBits2[b>>6] |= 1 << (b & 63)
		}
		ls.long = newWinTable(long)
	}
	if len(short) > 0 {
		ls.shortBit = new([1 << 10]uint64)
		for k := range short {
			ls.shortBit[k>>6] |= 1 << (k & 63)
		}
		ls.short = newWinTable(short)
	}
	return ls
}

func newWinTable(byWin map[uint32][]winEnt) winTable {
	tl := bits.Len(uint(len(byWin)*2 - 1))
	t := winTable{slots: make([]winSlot, 1<<tl), sh: uint32(32 - tl)}
	t.mask = uint32(len(t.slots) - 1)
	wins := make([]uint32, 0, len(byWin))
	for w := range byWin {
		wins = append(wins, w)
	}
	slices.Sort(wins) // deterministic layout
	// The literals' bytes go into one string in entry order: a verification then touches
	// the slot, the entries and the bytes right after them, not strings all over the heap.
	var arena strings.Builder
	for _, w := range wins {
		for _, e := range byWin[w] {
			arena.WriteString(e.lit)
		}
	}
	all, at := arena.String(), 0
	for _, w := range wins {
		lo := uint32(len(t.ents))
		for _, e := range byWin[w] {
			e.lit = all[at : at+len(e.lit)]
			at += len(e.lit)
			t.ents = append(t.ents, e)
		}
		i := (w * winMul) >> t.sh
		for t.slots[i].hi != 0 {
			i = (i + 1) & t.mask
		}
		t.slots[i] = winSlot{w: w, lo: lo, hi: uint32(len(t.ents))}
	}
	return t
}

// scan reports every literal occurring in text to st.hitLiteral.
func (ls *litSet) scan(text string, st *state) {
	if ls.one != nil || ls.shortBit != nil {
		ls.scanShort(text, st)
	}
	if ls.longBits == nil || len(text) < winLen {
		return
	}
	bm, sh, mask := ls.longBits, ls.longSh, ls.longMask
	w := uint32(text[0])<<8 | uint32(text[1])<<16 | uint32(text[2])<<24
	for i := winLen - 1; i < len(text); i++ {
		w = w>>8 | uint32(text[i])<<24
		b := (w * winMul) >> sh
		if bm[(b>>6)&mask]&(1<<(b&63)) != 0 && ls.second(w) {
			ls.long.verify(text, i-(winLen-1), w, st)
		}
	}
}

// scanField reports every literal occurring in the folded value of event field i.
// Most values hold no literal, and folding them costs as much as scanning: an ASCII
// value, whose folded form has its bytes at the same positions, is folded byte by byte
// as it is scanned, and literals are compared with it case-insensitively (eqFoldASCII).
// Other values are folded and scanned folded.
func (ls *litSet) scanField(st *state, i int) {
	text := st.ev.Fields[i].Value
	n := len(text)
	if st.lowGen[i] == st.gen || n < winLen || !isASCII(text) {
		ls.scan(st.lowAt(i), st)
		return
	}
	if ls.stride > 1 {
		ls.scanStrided(st, text)
		return
	}
	// Windows that would start before the text (j < 3) hold zero bytes there; verifyFold
	// rejects the literals they would place before position 0.
	var w uint32 // the last four folded bytes, the latest highest
	bm, sh, mask := ls.longBits, ls.longSh, ls.longMask
	one, sb := ls.one, ls.shortBit
	if one == nil && sb == nil && bm != nil {
		// Only literals of four bytes or more: the loop below without its other two
		// tests, which kept its variables in registers no longer.
		for j := 0; j < n; j++ {
			w = w>>8 | uint32(lowerASCII[text[j]])<<24
			if h := (w * winMul) >> sh; bm[(h>>6)&mask]&(1<<(h&63)) != 0 && ls.second(w) {
				ls.long.verifyFold(text, j-(winLen-1), w, st)
			}
		}
		return
	}
	for j := 0; j < n; j++ {
		c := lowerASCII[text[j]]
		w = w>>8 | uint32(c)<<24
		if one != nil {
			for _, id := range one[c] {
				st.hitLiteral(id)
			}
		}
		if sb != nil {
			if k := w >> 16; sb[k>>6]&(1<<(k&63)) != 0 {
				ls.short.verifyFold(text, j-1, k, st)
			}
		}
		if bm != nil {
			if h := (w * winMul) >> sh; bm[(h>>6)&mask]&(1<<(h&63)) != 0 && ls.second(w) {
				ls.long.verifyFold(text, j-(winLen-1), w, st)
			}
		}
	}
}

// second tests window w in longBits2, after its bit in longBits was found set.
func (ls *litSet) second(w uint32) bool {
	h := (w * winMul2) >> ls.longSh
	return ls.longBits2[(h>>6)&ls.longMask]&(1<<(h&63)) != 0
}

// isASCII reports whether s has no byte of 0x80 or more.
func isASCII(s string) bool {
	var acc uint64
	i := 0
	if len(s) >= 8 {
		b := unsafe.Slice(unsafe.StringData(s), len(s))
		for ; i+8 <= len(s); i += 8 {
			acc |= binary.LittleEndian.Uint64(b[i:])
		}
	}
	for ; i < len(s); i++ {
		acc |= uint64(s[i])
	}
	return acc&swarHigh == 0
}

// eqFoldASCII reports whether the ASCII text s folds to lit (len(s) == len(lit)).
func eqFoldASCII(s, lit string) bool {
	i := 0
	if len(s) >= 8 {
		a := unsafe.Slice(unsafe.StringData(s), len(s))
		b := unsafe.Slice(unsafe.StringData(lit), len(lit))
		for ; i+8 <= len(s); i += 8 {
			x := binary.LittleEndian.Uint64(a[i:])
			if x|swarUpper(x)>>2 != binary.LittleEndian.Uint64(b[i:]) {
				return false
			}
		}
	}
	for ; i < len(s); i++ {
		if lowerASCII[s[i]] != lit[i] {
			return false
		}
	}
	return true
}

// scanStrided is scanField for a set with a stride (only literals of stride+3 bytes or
// more) on an ASCII value: every stride-th position is tested, a window of four bytes
// read and folded at once.
func (ls *litSet) scanStrided(st *state, text string) {
	n := len(text)
	if n < ls.minLen {
		return
	}
	b := unsafe.Slice(unsafe.StringData(text), n)
	bm, sh, mask, sd := ls.longBits, ls.longSh, ls.longMask, ls.stride
	for p := 0; p+winLen <= n; p += sd {
		x := uint64(binary.LittleEndian.Uint32(b[p:]))
		w := uint32(x | swarUpper(x)>>2)
		if h := (w * winMul) >> sh; bm[(h>>6)&mask]&(1<<(h&63)) != 0 && ls.second(w) {
			ls.long.verifyFold(text, p, w, st)
		}
	}
}

// scanShort finds the literals of one to three bytes.
func (ls *litSet) scanShort(text string, st *state) {
	var prev uint32
	for i := 0; i < len(text); i++ {
		c := text[i]
		if ls.one != nil {
			for _, id := range ls.one[c] {
				st.hitLiteral(id)
			}
		}
		k := prev | uint32(c)<<8
		prev = uint32(c)
		if i > 0 && ls.shortBit != nil && ls.shortBit[k>>6]&(1<<(k&63)) != 0 {
			ls.short.verify(text, i-1, k, st)
		}
	}
}

// lookup returns the literals anchored at window w (none when w anchors nothing).
func (t *winTable) lookup(w uint32) []winEnt {
	i := (w * winMul) >> t.sh
	for {
		s := &t.slots[i]
		if s.hi == 0 {
			return nil
		}
		if s.w == w {
			return t.ents[s.lo:s.hi]
		}
		i = (i + 1) & t.mask
	}
}

// verify reports the literals anchored at window w found at position pos of text.
func (t *winTable) verify(text string, pos int, w uint32, st *state) {
	for _, e := range t.lookup(w) {
		start := pos - int(e.off)
		if start >= 0 && start+len(e.lit) <= len(text) && text[start:start+len(e.lit)] == e.lit {
			st.hitLiteral(e.id)
		}
	}
}

// verifyFold is verify on an ASCII text not yet folded.
func (t *winTable) verifyFold(text string, pos int, w uint32, st *state) {
	for _, e := range t.lookup(w) {
		start := pos - int(e.off)
		if start >= 0 && start+len(e.lit) <= len(text) && eqFoldASCII(text[start:start+len(e.lit)], e.lit) {
			st.hitLiteral(e.id)
		}
	}
}

const (
	winLen = 4
	winMul = 0x9E3779B1 // Fibonacci hashing: the high bits of w*winMul mix every byte of w
	// winMul2 is longBits2's multiplier (odd, from murmur3's finalizer): its high bits
	// are independent enough of winMul's that the two bitmaps' false positives rarely
	// coincide.
	winMul2 = 0x85EBCA6B
)

// winSlot is one anchor window: the literals anchored there are ents[lo:hi].
type winSlot struct {
	w      uint32
	lo, hi uint32
}

// winEnt is one literal anchored at a window: it starts off bytes before the window.
type winEnt struct {
	lit string
	off int32
	id  int32
}
