// Package source finds rule files under the folders given to an ingest and works out
// which upstream repository each belongs to, so pages can name and link the upstream
// file. The repository comes from, in order: an explicit --source-url; the nearest
// enclosing git checkout's remote (read from .git/config, no git binary needed) or a
// SOURCES.md manifest (a markdown table mapping sub-folders to upstream repositories
// and commits, as vendored corpora carry), whichever is closer to the file; else the
// folder path itself.
package source

import (
	"bufio"
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/ruledex/ruledex/rule"
)

// Info is an upstream repository and the local folder that mirrors its root.
type Info struct {
	// Repo is shown on pages: "github.com/SigmaHQ/sigma", or a folder path.
	Repo string
	// RepoURL is the browsable URL, "" when unknown.
	RepoURL string
	// Commit is the commit the files were read at, "" when unknown.
	Commit string
	// Base is the local folder that corresponds to the repository root; file paths
	// are made relative to it.
	Base string
	// fileCommits overrides Commit per file (path relative to Base), for corpora
	// assembled from several commits (a MANIFEST.tsv named in SOURCES.md).
	fileCommits map[string]string
	// blob is the path segment between RepoURL and the ref in file links.
	blob string
	// Plain marks the fallback: no repository is known and Repo is the ingested folder.
	Plain bool
}

// Source returns the rule.Source for the file at abs (which must lie under Base).
func (in *Info) Source(abs string) rule.Source {
	rel, commit := in.PathCommit(abs)
	s := rule.Source{Repo: in.Repo, RepoURL: in.RepoURL, Path: rel, Commit: commit}
	if in.RepoURL != "" && in.blob != "" {
		ref := s.Commit
		if ref == "" {
			ref = "HEAD"
		}
		s.UpstreamURL = in.RepoURL + "/" + in.blob + "/" + ref + "/" + escapePath(rel)
	}
	return s
}

// PathCommit returns the path of abs inside the repository and the commit it was read
// at: the parts of Source that identify it, without building the link.
func (in *Info) PathCommit(abs string) (rel, commit string) {
	if r, ok := strings.CutPrefix(abs, in.Base+string(filepath.Separator)); ok {
		rel = filepath.ToSlash(r)
	} else if r, err := filepath.Rel(in.Base, abs); err == nil && !strings.HasPrefix(r, "..") {
		rel = filepath.ToSlash(r)
	} else {
		rel = filepath.Base(abs)
	}
	commit = in.Commit
	if c, ok := in.fileCommits[rel]; ok {
		commit = c
	}
	return rel, commit
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, x := range parts {
		parts[i] = url.PathEscape(x)
	}
	return strings.Join(parts, "/")
}

// Resolver finds the Info of files. It caches what it reads per directory and is safe
// for concurrent use.
type Resolver struct {
	override *Info
	mirrors  []*Info // folders a caller filled from a repository (see Mirror)
	mu       sync.Mutex
	byDir    map[string]*Info    // file directory -> answer
	git      map[string]*Info    // directory -> its .git answer (nil: none)
	man      map[string]manifest // directory -> SOURCES.md entries (nil: none)
}

// NewResolver returns a resolver. sourceURL, when not empty, is used for every file,
// with paths relative to the ingested root (see For).
func NewResolver(sourceURL string) (*Resolver, error) {
	r := &Resolver{byDir: map[string]*Info{}, git: map[string]*Info{}, man: map[string]manifest{}}
	if sourceURL != "" {
		repo, repoURL, blob, ok := ParseRemote(sourceURL)
		if !ok {
			return nil, fmt.Errorf("source url %q: not a repository URL", sourceURL)
		}
		r.override = &Info{Repo: repo, RepoURL: repoURL, blob: blob}
	}
	return r, nil
}

// For returns the Info for the file abs found under the ingested root (an absolute
// folder, or the file itself).
func (r *Resolver) For(root, abs string) *Info {
	dir := filepath.Dir(abs)
	if r.override != nil {
		base := root
		if base == abs {
			base = dir
		}
		in := *r.override
		in.Base = base
		return &in
	}
	for _, m := range r.mirrors {
		if strings.HasPrefix(abs, m.Base+string(filepath.Separator)) {
			return m
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if in, ok := r.byDir[dir]; ok {
		return in
	}
	in := r.find(dir, root)
	r.byDir[dir] = in
	return in
}

func (r *Resolver) find(dir, root string) *Info {
	for d := dir; ; d = filepath.Dir(d) {
		if in := r.gitAt(d); in != nil {
			return in
		}
		if m := r.manifestAt(d); m != nil {
			if in := m.lookup(dir); in != nil {
				return in
			}
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	base := root
	if st, err := os.Stat(root); err == nil && !st.IsDir() {
		base = filepath.Dir(root)
	}
	return &Info{Repo: base, Base: base, Plain: true}
}

// Mirror is the Info of a folder that a caller filled with files of a repository it
// fetched itself (ruledex sync), where each file may come from a different commit:
// commits maps a path relative to base (forward slashes) to the commit it was read at.
// A remote that is not a browsable repository (a file:// URL, a local path) is named by
// the remote as given, without a link.
func Mirror(remote, base string, commits map[string]string) *Info {
	in := &Info{Repo: remote, Base: filepath.Clean(base), fileCommits: commits}
	if repo, repoURL, blob, ok := ParseRemote(remote); ok {
		in.Repo, in.RepoURL, in.blob = repo, repoURL, blob
	}
	return in
}

// AddMirror makes files under in.Base (see Mirror) belong to in, before any git
// checkout, SOURCES.md or --source-url is considered. Call it before For.
func (r *Resolver) AddMirror(in *Info) { r.mirrors = append(r.mirrors, in) }

// PlainFolder is the Info of a plain folder used as a repository (see Info.Plain).
func PlainFolder(dir string) *Info { return &Info{Repo: dir, Base: dir, Plain: true} }

// gitAt reads d/.git when it exists.
func (r *Resolver) gitAt(d string) *Info {
	if in, ok := r.git[d]; ok {
		return in
	}
	var in *Info
	gitDir := filepath.Join(d, ".git")
	if st, err := os.Stat(gitDir); err == nil {
		if !st.IsDir() {
			// A worktree or submodule: ".git" is a file "gitdir: <path>".
			if b, err := os.ReadFile(gitDir); err == nil {
				if g, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "gitdir:"); ok {
					g = strings.TrimSpace(g)
					if !filepath.IsAbs(g) {
						g = filepath.Join(d, g)
					}
					gitDir = g
				}
			}
		}
		in = &Info{Repo: d, Base: d}
		common := gitDir
		if b, err := os.ReadFile(filepath.Join(gitDir, "commondir")); err == nil {
			c := strings.TrimSpace(string(b))
			if !filepath.IsAbs(c) {
				c = filepath.Join(gitDir, c)
			}
			common = c
		}
		if u := remoteURL(filepath.Join(common, "config")); u != "" {
			if repo, repoURL, blob, ok := ParseRemote(u); ok {
				in.Repo, in.RepoURL, in.blob = repo, repoURL, blob
			}
		}
		in.Commit = headCommit(gitDir, common)
	}
	r.git[d] = in
	return in
}

// remoteURL returns the url of remote "origin" in a git config, else of the first remote.
func remoteURL(config string) string {
	b, err := os.ReadFile(config)
	if err != nil {
		return ""
	}
	var first, origin, section string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) != "url" || !strings.HasPrefix(section, "[remote ") {
			continue
		}
		v = strings.Trim(strings.TrimSpace(v), `"`)
		if first == "" {
			first = v
		}
		if section == `[remote "origin"]` {
			origin = v
		}
	}
	if origin != "" {
		return origin
	}
	return first
}

var hexRef = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// headCommit resolves HEAD through loose refs and packed-refs; "" when it cannot.
func headCommit(gitDir, common string) string {
	b, err := os.ReadFile(filepath.Join(gitDir, "HEAD"))
	if err != nil {
		return ""
	}
	head := strings.TrimSpace(string(b))
	ref, ok := strings.CutPrefix(head, "ref:")
	if !ok {
		if hexRef.MatchString(head) {
			return head
		}
		return ""
	}
	ref = strings.TrimSpace(ref)
	for _, d := range []string{gitDir, common} {
		if b, err := os.ReadFile(filepath.Join(d, filepath.FromSlash(ref))); err == nil {
			if h := strings.TrimSpace(string(b)); hexRef.MatchString(h) {
				return h
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(common, "packed-refs")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			h, name, ok := strings.Cut(strings.TrimSpace(line), " ")
			if ok && name == ref && hexRef.MatchString(h) {
				return h
			}
		}
	}
	return ""
}

// ParseRemote turns a git remote or repository URL into the repository as pages show
// it ("github.com/a/b"), its browsable URL and the path segment of file links ("blob",
// or "-/blob" for GitLab). ok is false for what is not a remote repository (a local path).
func ParseRemote(u string) (repo, repoURL, blob string, ok bool) {
	u = strings.TrimSpace(u)
	var host, p string
	switch {
	case strings.Contains(u, "://"):
		pu, err := url.Parse(u)
		if err != nil || pu.Host == "" || pu.Scheme == "file" {
			return "", "", "", false
		}
		host, p = pu.Hostname(), pu.Path
	case strings.Contains(u, ":") && !strings.HasPrefix(u, "/"):
		// scp-like: git@github.com:a/b.git
		h, rest, _ := strings.Cut(u, ":")
		if i := strings.LastIndexByte(h, '@'); i >= 0 {
			h = h[i+1:]
		}
		host, p = h, rest
	default:
		return "", "", "", false
	}
	p = strings.Trim(p, "/")
	p = strings.TrimSuffix(p, ".git")
	// Links to a file or tree inside the repository keep only the repository part.
	if i := strings.Index(p, "/-/"); i > 0 {
		p = p[:i] // GitLab: group/sub/name/-/blob/...
	} else if parts := strings.Split(p, "/"); len(parts) > 2 && (host == "github.com" || host == "bitbucket.org") {
		p = strings.Join(parts[:2], "/")
	}
	if host == "" || p == "" {
		return "", "", "", false
	}
	host = strings.ToLower(host)
	repo = host + "/" + p
	blob = "blob"
	if strings.Contains(host, "gitlab") {
		blob = "-/blob"
	}
	if host == "bitbucket.org" {
		blob = "src"
	}
	return repo, "https://" + repo, blob, true
}

// manifest is a parsed SOURCES.md: folder (relative, forward slashes) -> upstream.
type manifest []manifestEntry

type manifestEntry struct {
	dir  string // absolute folder
	info *Info
}

// lookup returns the entry whose folder is the longest one containing dir.
func (m manifest) lookup(dir string) *Info {
	var best *manifestEntry
	for i := range m {
		e := &m[i]
		if dir == e.dir || strings.HasPrefix(dir, e.dir+string(filepath.Separator)) {
			if best == nil || len(e.dir) > len(best.dir) {
				best = e
			}
		}
	}
	if best == nil {
		return nil
	}
	return best.info
}

var (
	ownerRepo = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)
	seeFile   = regexp.MustCompile(`see\s+(\S+\.tsv)`)
)

func (r *Resolver) manifestAt(d string) manifest {
	if m, ok := r.man[d]; ok {
		return m
	}
	m := readManifest(d)
	r.man[d] = m
	return m
}

// readManifest parses d/SOURCES.md: a markdown table with columns folder, commit,
// source (and others, ignored). The source is "owner/name" on GitHub or a URL.
func readManifest(d string) manifest {
	b, err := os.ReadFile(filepath.Join(d, "SOURCES.md"))
	if err != nil {
		return nil
	}
	return parseManifest(d, b)
}

// parseManifest reads the table of a SOURCES.md found in folder d.
func parseManifest(d string, b []byte) manifest {
	var m manifest
	col := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if len(col) == 0 {
			for i, c := range cells {
				col[strings.ToLower(c)] = i
			}
			continue
		}
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(cells) {
				return cells[i]
			}
			return ""
		}
		folder, commit, src := get("folder"), get("commit"), get("source")
		if folder == "" || strings.Trim(folder, "-: ") == "" {
			continue // the header separator row
		}
		repoRef := strings.Fields(src)
		if len(repoRef) == 0 {
			continue
		}
		ref := strings.Trim(repoRef[0], "`")
		if ownerRepo.MatchString(ref) {
			ref = "https://github.com/" + ref
		}
		repo, repoURL, blob, ok := ParseRemote(ref)
		if !ok {
			continue
		}
		abs := filepath.Join(d, filepath.FromSlash(strings.Trim(folder, "`/")))
		in := &Info{Repo: repo, RepoURL: repoURL, blob: blob, Base: abs}
		if hexRef.MatchString(strings.ToLower(commit)) {
			in.Commit = strings.ToLower(commit)
		} else if sm := seeFile.FindStringSubmatch(commit); sm != nil {
			in.fileCommits = readFileCommits(filepath.Join(d, filepath.FromSlash(sm[1])))
		}
		m = append(m, manifestEntry{dir: abs, info: in})
	}
	return m
}

// readFileCommits reads a MANIFEST.tsv: path, commit, ... per line.
func readFileCommits(p string) map[string]string {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, "\t")
		if len(f) >= 2 && hexRef.MatchString(strings.TrimSpace(f[1])) {
			out[path.Clean(strings.TrimSpace(f[0]))] = strings.TrimSpace(f[1])
		}
	}
	return out
}
