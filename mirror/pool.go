package mirror

import (
	"context"
	"sync"
	"time"
)

// pool runs the downloads of one Fetch through the Fetcher's Concurrency
// slots (shared by every Fetch under way, so that concurrent fetches, as a
// sync of several versions runs them, keep Concurrency downloads in
// flight in all), each download key once: release assets start while the rest of the
// resolution (other releases, blob locations) is still under way, and
// whoever needs a file waits for its future.
type pool struct {
	ctx   context.Context // cancelled when Fetch returns
	slots chan struct{}
	get   func(ctx context.Context, key string, req dlRequest) (object, error)

	mu      sync.Mutex
	futures map[string]*dlFuture
	obs     downloadObserver // nil for none
	wg      sync.WaitGroup
}

// downloadObserver is told of every download the pool runs, with the sink
// that mirrors its bytes as they arrive (the in-place bundle writer is one).
type downloadObserver interface {
	attach(key string, s *teeSink)
}

// newPool makes the pool of one Fetch over slots, the Fetcher's.
func newPool(ctx context.Context, slots chan struct{}, get func(context.Context, string, dlRequest) (object, error)) *pool {
	return &pool{ctx: ctx, slots: slots, get: get, futures: map[string]*dlFuture{}}
}

// dlFuture is a download started in the pool.
type dlFuture struct {
	done chan struct{}
	obj  object
	err  error
	sink *teeSink // mirrors the download into an in-place bundle
}

func (fu *dlFuture) wait(ctx context.Context) (object, error) {
	select {
	case <-fu.done:
		return fu.obj, fu.err
	case <-ctx.Done():
		return object{}, ctx.Err()
	}
}

// start downloads key into the cache in the pool, unless it is started
// already, and returns its future.
func (p *pool) start(key string, req dlRequest) *dlFuture {
	p.mu.Lock()
	defer p.mu.Unlock()
	if fu := p.futures[key]; fu != nil {
		return fu
	}
	fu := &dlFuture{done: make(chan struct{}), sink: &teeSink{}}
	p.futures[key] = fu
	req.sink = fu.sink
	if p.obs != nil {
		p.obs.attach(key, fu.sink)
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(fu.done)
		if fu.err = p.acquire(p.ctx); fu.err != nil {
			return
		}
		// The slot is free as soon as the body has arrived: the next
		// download starts while this one is synced and stored.
		var once sync.Once
		req.received = func() { once.Do(p.release) }
		defer req.received()
		fu.obj, fu.err = p.get(p.ctx, key, req)
	}()
	return fu
}

// observe makes o see every download: those under way now and those
// started later.
func (p *pool) observe(o downloadObserver) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.obs = o
	for key, fu := range p.futures {
		o.attach(key, fu.sink)
	}
}

// acquire takes a slot (for work that is not a pooled download, such as a
// --blob-dir copy); release gives it back.
func (p *pool) acquire(ctx context.Context) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *pool) release() { <-p.slots }

// wait waits for every download started to end.
func (p *pool) wait() { p.wg.Wait() }

// fetchObject gets one download through the cache and accounts for it.
func (r *fetchRun) fetchObject(ctx context.Context, key string, req dlRequest) (object, error) {
	start := time.Now()
	obj, st, err := r.f.cache.fetch(ctx, r.dl, key, req)
	r.net.Add(st.net)
	if err != nil {
		return object{}, err
	}
	if st.hit {
		r.hits.Add(1)
		r.saved.Add(st.saved)
		r.f.log.Debug("cache hit", "file", req.label, "size", obj.Size)
	} else {
		r.f.log.Debug("downloaded", "file", req.label, "size", obj.Size, "sha256", obj.SHA256,
			"took", time.Since(start).Round(time.Millisecond))
	}
	return obj, nil
}
