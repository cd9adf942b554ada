package syncjob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/manifest/trust"
	"github.com/ccmirror/ccmirror/mirror"
	"github.com/ccmirror/ccmirror/transport/blob"
)

// Options are what a run takes besides the config.
type Options struct {
	// Signer signs bundles and the index; nil loads Config.SignKey with
	// trust.LoadSigner (passphrase from CCMIRROR_KEY_PASSPHRASE only).
	Signer manifest.Signer
	// Token is the GitHub token; "" reads the variable Config.TokenEnv
	// names.
	Token string
	// CacheDir overrides Config.Cache.
	CacheDir string
	// Progress receives mirror's progress bar; it draws only on a
	// terminal, nil means none.
	Progress io.Writer
	// Log receives what happens; nil discards.
	Log *slog.Logger
	// HTTPClient is the base client for GitHub; nil means mirror's default.
	HTTPClient *http.Client
	// Blob tunes uploads to the publish URL.
	Blob blob.Options
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// SplitSize, when positive, also cuts every new bundle into parts of
	// this size with a signed part list beside it, for removable media.
	SplitSize int64
	// Notice receives one line for each wait a user should see (a retry,
	// a lock held by another process); nil drops them.
	Notice func(line string)
}

// run is the state of one Run.
type run struct {
	cfg    *Config
	o      Options
	log    *slog.Logger
	now    func() time.Time
	signer manifest.Signer
	f      *mirror.Fetcher
	cache  string // the download cache, which also holds the job lock
	ix     *Index
	sum    *Summary
	errs   []error
}

// Run does one pass of the mirror job: take the output folder's lock,
// resolve every version policy on GitHub, fetch each release not yet
// mirrored (or whose assets changed since) into a new bundle, record it in
// index.json (rewritten atomically and signed after each bundle), then, with
// a publish URL, upload every bundle the container lacks and finally the
// index. Releases already mirrored cost no download and no write.
//
// A failing policy, release or upload does not stop the others: the
// Summary lists it and the returned error joins every failure (matching
// mirror.ErrUpstream, manifest.ErrVerify… as their causes do) and the
// Summary says what was done. A failure before any work (the sign key, the
// output folder, a damaged index) returns a nil Summary; so does a held
// lock, at once, with an error matching errclass.ErrConflict.
func Run(ctx context.Context, cfg *Config, o Options) (*Summary, error) {
	r := &run{cfg: cfg, o: o, log: o.Log, now: o.Now}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	r.sum = &Summary{
		Config:    cfg.Path,
		Output:    cfg.Output,
		Index:     filepath.Join(cfg.Output, IndexName),
		New:       []Bundle{},
		Unchanged: []Version{},
		Changed:   []Change{},
		Published: []string{},
		Failed:    []Failure{},
	}
	// Failures before any work (sign key, output folder, lock, index,
	// GitHub URL) end the run with no summary.
	if err := r.setup(); err != nil {
		return nil, err
	}
	cache := r.o.CacheDir
	if cache == "" {
		cache = cfg.Cache
	}
	if cache == "" {
		d, err := mirror.DefaultCacheDir()
		if err != nil {
			return nil, fmt.Errorf("sync: %w", err)
		}
		cache = d
	}
	r.cache = cache
	lock, err := lockOutput(ctx, cache, cfg.Output, r.now())
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	r.sweep()
	if r.ix, err = loadIndex(cfg.Output); err != nil {
		return nil, err
	}
	if err := r.newFetcher(); err != nil {
		return nil, err
	}

	defer func() { r.sum.Sequence = r.ix.Sequence }()
	r.mirrorAll(ctx, r.resolve(ctx))
	if err := ctx.Err(); err != nil {
		return r.sum, errors.Join(append(r.errs, fmt.Errorf("sync: %w", err))...)
	}
	r.sum.NothingNew = len(r.sum.New) == 0
	if cfg.Publish != "" {
		if err := r.publish(ctx); err != nil {
			r.fail(Failure{Error: err.Error()}, err)
		}
	}
	return r.sum, errors.Join(r.errs...)
}

// setup loads the signer and makes the output folder.
func (r *run) setup() error {
	r.signer = r.o.Signer
	if r.signer == nil {
		s, err := trust.LoadSigner(r.cfg.SignKey, nil)
		if err != nil {
			return fmt.Errorf("sync: sign key: %w", err)
		}
		r.signer = s
	}
	if err := os.MkdirAll(r.cfg.Output, 0o755); err != nil {
		return fmt.Errorf("sync: output: %w", err)
	}
	return nil
}

func (r *run) newFetcher() error {
	token := r.o.Token
	if token == "" && r.cfg.TokenEnv != "" {
		token = os.Getenv(r.cfg.TokenEnv)
		if token == "" && r.cfg.TokenEnv != DefaultTokenEnv {
			r.log.Warn("the token variable named by token_env is empty; using GitHub without a token (low rate limit)", "token_env", r.cfg.TokenEnv)
		}
	}
	f, err := mirror.NewFetcher(mirror.Options{
		GitHubURL:   r.cfg.GitHubURL,
		Token:       token,
		CacheDir:    r.cache,
		Concurrency: r.cfg.Concurrency,
		Signer:      r.signer,
		Progress:    r.o.Progress,
		Log:         r.log,
		HTTPClient:  r.o.HTTPClient,
		Now:         r.o.Now,
		Notice:      r.o.Notice,
	})
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	r.f = f
	return nil
}

// fail records a failure and its error.
func (r *run) fail(f Failure, err error) {
	r.sum.Failed = append(r.sum.Failed, f)
	r.errs = append(r.errs, err)
	r.log.Error("sync step failed", "error", err.Error())
}

// loadIndex reads <dir>/index.json; a missing file is an empty index.
func loadIndex(dir string) (*Index, error) {
	path := filepath.Join(dir, IndexName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Index{Schema: IndexSchema, Bundles: []Entry{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}
	ix, err := ParseIndex(b)
	if err != nil {
		return nil, fmt.Errorf("sync: %s: %w (fix or move it away; the job does not overwrite a damaged index)", path, err)
	}
	return ix, nil
}

// saveIndex writes the next index.json and index.json.sig (writeIndex):
// only when a bundle was added, so an idle run changes no file.
func (r *run) saveIndex() error {
	return writeIndex(r.cfg.Output, r.ix, r.signer, r.now(), r.log)
}
