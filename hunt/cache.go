package hunt

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ruledex/ruledex/rule"
)

// The rule cache keeps what parsing a rule set produced, so that the next hunt over
// the same rules starts without parsing them: parsing the 2,400 SigmaHQ Windows rules
// costs about 0.6 CPU-seconds, the cache about a tenth of it.
//
// An entry is keyed by the file's path and a SHA-256 of its content (never by its
// modification time: a file rewritten within a second, or checked out from git,
// changes content without a reliable time). One cache file holds one rule set (the
// --rules arguments, made absolute) for one build of the parsers; its name hashes
// both, so two builds or two rule sets never read each other's entries, and the file
// is rewritten only when a rule file changed, appeared or disappeared. A cache file
// that cannot be read for any reason is ignored and replaced: the cache can only
// save time, never change what a hunt reports.

// cacheFormat is part of every cache key: bump it when the stored encoding or what
// LoadRules derives from parser output changes.
const cacheFormat = "hunt-rules-2"

type cacheEntry struct {
	Path  string
	Sum   [32]byte
	errs  []string
	warns []string
	rules []*rule.Rule
}

// trim drops what a hunt never reads from a rule: its text and documentation (about
// two thirds of a Sigma rule's IR). Load trims every rule when it has a cache, hit or
// miss, so that the result does not depend on the cache's state.
func trim(r *rule.Rule) {
	r.Body, r.Bodies, r.Description, r.References, r.FalsePositives = "", nil, "", nil, nil
	r.Docs, r.Indicators, r.Authors = nil, nil, nil
}

// BuildFingerprint identifies the running executable's build: its module versions,
// VCS revision and, because a `go run` of an edited tree has neither changed, the
// executable file's size and modification time. Rule caches keyed by it are never
// read by another build, whatever the parsers' declared versions say.
func BuildFingerprint() string {
	var b strings.Builder
	b.WriteString(cacheFormat)
	if bi, ok := debug.ReadBuildInfo(); ok {
		b.WriteString(";" + bi.Main.Path + "@" + bi.Main.Version)
		for _, s := range bi.Settings {
			if strings.HasPrefix(s.Key, "vcs.") {
				b.WriteString(";" + s.Key + "=" + s.Value)
			}
		}
		for _, d := range bi.Deps {
			if d.Replace != nil {
				d = d.Replace
			}
			b.WriteString(";" + d.Path + "@" + d.Version)
		}
	}
	if exe, err := os.Executable(); err == nil {
		if st, err := os.Stat(exe); err == nil {
			fmt.Fprintf(&b, ";exe=%s:%d:%d", exe, st.Size(), st.ModTime().UnixNano())
		}
	}
	return b.String()
}

// DefaultCacheDir is the rule cache folder in the user's cache folder
// ($XDG_CACHE_HOME/ruledex/hunt-rules); "" when there is none.
func DefaultCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "ruledex", "hunt-rules")
}

// ruleCache is one rule set's cache during a load.
type ruleCache struct {
	path string // the cache file
	key  string
	old  map[string]cacheEntry // by rule file path, from the cache file
}

// openCache reads the cache of the rule set roots for the given fingerprint. A
// missing or unreadable cache file gives an empty cache.
func openCache(dir, fingerprint string, roots []string) *ruleCache {
	abs := make([]string, 0, len(roots))
	for _, r := range roots {
		if a, err := filepath.Abs(r); err == nil {
			r = a
		}
		abs = append(abs, r)
	}
	sort.Strings(abs)
	h := sha256.Sum256([]byte(fingerprint + "\x00" + strings.Join(abs, "\x00")))
	key := hex.EncodeToString(h[:])
	c := &ruleCache{path: filepath.Join(dir, key[:32]+".rules"), key: key, old: map[string]cacheEntry{}}
	data, err := os.ReadFile(c.path)
	if err != nil {
		return c
	}
	if old, err := decodeCache(data, key); err == nil {
		c.old = old
	}
	return c
}

// A cache file is cacheMagic, the key and a newline, then cacheShards shards, each a
// big-endian uint64 length, a CRC-32C of the shard (a damaged byte inside a string
// would otherwise decode, as a wrong rule) and the shard in the encoding of codec.go.
// Shards decode in parallel.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const (
	cacheMagic  = "ruledex hunt rule cache\n"
	cacheShards = 8
)

// decodeCache decodes a cache file. A panic of the decoder on a damaged file becomes
// an error.
func decodeCache(data []byte, key string) (map[string]cacheEntry, error) {
	head := cacheMagic + key + "\n"
	if !bytes.HasPrefix(data, []byte(head)) {
		return nil, errors.New("not a rule cache of this rule set")
	}
	data = data[len(head):]
	var shards [][]byte
	for len(data) > 0 {
		if len(data) < 8 {
			return nil, errors.New("damaged rule cache: truncated")
		}
		n := binary.BigEndian.Uint64(data)
		data = data[8:]
		if len(data) < 4 || n > uint64(len(data)-4) {
			return nil, errors.New("damaged rule cache: truncated")
		}
		sum := binary.BigEndian.Uint32(data)
		data = data[4:]
		if crc32.Checksum(data[:n], castagnoli) != sum {
			return nil, errors.New("damaged rule cache: checksum mismatch")
		}
		shards = append(shards, data[:n])
		data = data[n:]
	}
	if len(shards) != cacheShards {
		return nil, errors.New("damaged rule cache: shards missing")
	}
	got := make([][]cacheEntry, len(shards))
	errs := make([]error, len(shards))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, sh := range shards {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			got[i], errs[i] = decodeShard(sh)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	old := map[string]cacheEntry{}
	for _, es := range got {
		for _, e := range es {
			old[e.Path] = e
		}
	}
	return old, nil
}

// lookup returns the cached parse of path when its content hashes to sum.
func (c *ruleCache) lookup(path string, sum [32]byte) (parsed, bool) {
	e, ok := c.old[path]
	if !ok || e.Sum != sum {
		return parsed{}, false
	}
	return parsed{rules: e.rules, errs: e.errs, warns: e.warns}, true
}

// save writes the cache file for files (in load order) when it differs from what was
// read: a file changed (dirty), appeared or disappeared. It writes a temporary file
// and renames it, so that concurrent hunts never read a partial cache.
func (c *ruleCache) save(files []string, sums [][32]byte, res []parsed, dirty bool) error {
	if !dirty && len(c.old) == len(files) {
		same := true
		for _, f := range files {
			if _, ok := c.old[f]; !ok {
				same = false
				break
			}
		}
		if same {
			// Mark it used, so that prune keeps a cache read every day.
			now := time.Now()
			os.Chtimes(c.path, now, now)
			return nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.path), ".tmp-*")
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(tmp, 256<<10)
	bw.WriteString(cacheMagic + c.key + "\n")
	for sh := 0; sh < cacheShards; sh++ {
		enc := newEncoder()
		lo, hi := sh*len(files)/cacheShards, (sh+1)*len(files)/cacheShards
		for i := lo; i < hi; i++ {
			enc.entry(files[i], sums[i], res[i])
		}
		b := enc.shard(hi - lo)
		var n [12]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		binary.BigEndian.PutUint32(n[8:], crc32.Checksum(b, castagnoli))
		bw.Write(n[:])
		bw.Write(b)
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), c.path)
	}
	if err == nil {
		prune(filepath.Dir(c.path), c.path, time.Now())
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("rule cache %s: %w", c.path, err)
	}
	return nil
}

// Every build and every rule set gets its own cache file, so old ones pile up (a
// developer rebuilding makes one per build): prune keeps the newest cacheKeep files
// and none older than cacheMaxAge, besides the one just written.
const (
	cacheKeep   = 8
	cacheMaxAge = 30 * 24 * time.Hour
)

func prune(dir, keep string, now time.Time) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type file struct {
		path string
		mod  time.Time
	}
	var fs []file
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() || p == keep {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(e.Name(), ".tmp-"):
			// Left by a hunt that was killed while writing.
			if now.Sub(info.ModTime()) > time.Hour {
				os.Remove(p)
			}
		case strings.HasSuffix(e.Name(), ".rules"), strings.HasSuffix(e.Name(), ".gob"): // .gob: format 1
			fs = append(fs, file{p, info.ModTime()})
		}
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].mod.After(fs[j].mod) })
	for i, f := range fs {
		if i >= cacheKeep-1 || now.Sub(f.mod) > cacheMaxAge {
			os.Remove(f.path)
		}
	}
}
