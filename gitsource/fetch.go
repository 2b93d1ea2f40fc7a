package gitsource

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
)

// fetchedRef holds, in each cached repository, the commit last fetched.
const fetchedRef = plumbing.ReferenceName("refs/ruledex/fetched")

var localOnce sync.Once

// serveLocalInProcess makes file:// and local-path remotes readable without a git
// binary: go-git's own file transport runs git-upload-pack. The in-process server
// ignores the depth of a fetch, so local repositories are copied whole, which costs
// nothing that matters on one disk.
func serveLocalInProcess() {
	localOnce.Do(func() { client.InstallProtocol("file", server.NewClient(localLoader{})) })
}

// localLoader opens local repositories, bare or not (go-git's default loader reads a
// checkout's worktree as if it were the git folder).
type localLoader struct{}

func (localLoader) Load(ep *transport.Endpoint) (storer.Storer, error) {
	r, err := git.PlainOpenWithOptions(ep.Path, &git.PlainOpenOptions{EnableDotGitCommonDir: true})
	if err != nil {
		return nil, transport.ErrRepositoryNotFound
	}
	return r.Storer, nil
}

// Env reads the environment; tests replace it.
type Env func(string) string

// tokenFor returns the token for an http(s) remote: RULEDEX_GIT_TOKEN, else
// GITHUB_TOKEN when the host is github.com. Other schemes get none (ssh uses its agent).
func tokenFor(remote string, env Env) string {
	u, err := url.Parse(remote)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return ""
	}
	if t := env("RULEDEX_GIT_TOKEN"); t != "" {
		return t
	}
	if h := strings.ToLower(u.Hostname()); h == "github.com" || strings.HasSuffix(h, ".github.com") {
		return env("GITHUB_TOKEN")
	}
	return ""
}

func authFor(remote string, env Env) (transport.AuthMethod, string) {
	tok := tokenFor(remote, env)
	if tok == "" {
		return nil, ""
	}
	user := env("RULEDEX_GIT_USER")
	if user == "" {
		// GitHub and Gitea take any user name with a token; GitLab wants one too.
		user = "x-access-token"
	}
	return &githttp.BasicAuth{Username: user, Password: tok}, tok
}

// redact removes secrets from text meant for people: the token, and the user
// information of URLs.
func redact(s, token string) string {
	if token != "" {
		s = strings.ReplaceAll(s, token, "***")
	}
	return userinfo.ReplaceAllString(s, "$1***@")
}

// DisplayURL is a remote as it may be shown or stored: without user information.
func DisplayURL(remote string) string { return redact(remote, "") }

// safeErr is an error whose text has been redacted; it keeps the original for errors.Is.
type safeErr struct {
	msg string
	err error
}

func (e *safeErr) Error() string { return e.msg }
func (e *safeErr) Unwrap() error { return e.err }

func scrub(err error, token string) error {
	if err == nil {
		return nil
	}
	return &safeErr{msg: redact(err.Error(), token), err: err}
}

// userinfo matches the user information of a URL in text.
var userinfo = regexp.MustCompile(`(://)[^/@\s]+@`)

// openRepo opens (or creates) the bare cache repository at dir with remote origin = remote.
func openRepo(dir, remote string) (*git.Repository, error) {
	repo, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return nil, err
		}
		repo, err = git.PlainInit(dir, true)
	}
	if err != nil {
		return nil, fmt.Errorf("cache repository %s: %w", dir, err)
	}
	rem, err := repo.Remote("origin")
	if err == nil && (len(rem.Config().URLs) != 1 || rem.Config().URLs[0] != remote) {
		if err := repo.DeleteRemote("origin"); err != nil {
			return nil, err
		}
		err = git.ErrRemoteNotFound
	}
	if errors.Is(err, git.ErrRemoteNotFound) {
		_, err = repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{remote},
			Fetch: []config.RefSpec{config.RefSpec("+HEAD:" + fetchedRef)}})
	}
	if err != nil {
		return nil, fmt.Errorf("cache repository %s: %w", dir, err)
	}
	return repo, nil
}

// fetch brings the commit that ref names on the remote into repo (depth 1) and returns
// it with the full name of the ref it came from.
func fetch(ctx context.Context, repo *git.Repository, ref string, auth transport.AuthMethod) (*object.Commit, plumbing.ReferenceName, error) {
	rem, err := repo.Remote("origin")
	if err != nil {
		return nil, "", err
	}
	refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: auth, PeelingOption: git.AppendPeeled})
	if err != nil {
		return nil, "", fmt.Errorf("list remote references: %w", err)
	}
	byName := map[plumbing.ReferenceName]*plumbing.Reference{}
	for _, r := range refs {
		byName[r.Name()] = r
	}
	var name plumbing.ReferenceName
	switch {
	case ref == "":
		head, ok := byName[plumbing.HEAD]
		if !ok {
			return nil, "", errors.New("the remote has no HEAD: give a ref")
		}
		name = plumbing.HEAD
		if head.Type() == plumbing.SymbolicReference {
			name = head.Target()
		} else {
			// Without the symref capability HEAD is a hash: the branch that carries it.
			for _, r := range refs {
				if r.Name().IsBranch() && r.Hash() == head.Hash() {
					name = r.Name()
					break
				}
			}
		}
	case strings.HasPrefix(ref, "refs/"):
		name = plumbing.ReferenceName(ref)
	default:
		for _, cand := range []plumbing.ReferenceName{plumbing.NewBranchReferenceName(ref), plumbing.NewTagReferenceName(ref)} {
			if _, ok := byName[cand]; ok {
				name = cand
				break
			}
		}
		if name == "" {
			return nil, "", fmt.Errorf("no branch or tag %q on the remote", ref)
		}
	}
	r, ok := byName[name]
	if !ok {
		return nil, "", fmt.Errorf("no reference %s on the remote", name)
	}
	want := r.Hash()
	if p, ok := byName[name+"^{}"]; ok {
		want = p.Hash() // an annotated tag: the commit it points at
	}
	if c, err := repo.CommitObject(want); err == nil {
		// Already here (nothing new, or a branch moved back): no fetch needed.
		return c, name, setRef(repo, c.Hash)
	}
	err = rem.FetchContext(ctx, &git.FetchOptions{
		RefSpecs: []config.RefSpec{config.RefSpec("+" + string(name) + ":" + string(fetchedRef))},
		Depth:    depthFor(rem.Config().URLs[0]),
		Auth:     auth,
		Tags:     git.NoTags,
		Force:    true,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, "", fmt.Errorf("fetch %s: %w", name, err)
	}
	got, err := repo.Reference(fetchedRef, true)
	if err != nil {
		return nil, "", fmt.Errorf("fetch %s: %w", name, err)
	}
	c, err := peel(repo, got.Hash())
	if err != nil {
		return nil, "", fmt.Errorf("fetch %s: %w", name, err)
	}
	return c, name, nil
}

// depthFor is 1 (a shallow fetch) except for local repositories, whose in-process
// server has no shallow support and whose history costs no download.
func depthFor(remote string) int {
	if ep, err := transport.NewEndpoint(remote); err == nil && ep.Protocol == "file" {
		return 0
	}
	return 1
}

func setRef(repo *git.Repository, h plumbing.Hash) error {
	return repo.Storer.SetReference(plumbing.NewHashReference(fetchedRef, h))
}

// peel follows annotated tags to the commit.
func peel(repo *git.Repository, h plumbing.Hash) (*object.Commit, error) {
	for range 10 {
		if c, err := repo.CommitObject(h); err == nil {
			return c, nil
		}
		t, err := repo.TagObject(h)
		if err != nil {
			return nil, fmt.Errorf("%s is neither a commit nor a tag", h)
		}
		h = t.Target
	}
	return nil, fmt.Errorf("%s: tag chain too long", h)
}
