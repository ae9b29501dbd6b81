package provider

import (
	"context"
	"sync"
	"time"

	"github.com/astral/idp/storage"
)

// ClientCacheTTL is how long a node keeps a product it read. A token request reads its
// client two or three times, while products change only by an admin's hand (the
// clients file at start, the CLI): a change reaches every node within this time.
const ClientCacheTTL = 2 * time.Second

// clientCache keeps recently read products. Misses are not kept, so the map holds only
// products that exist and cannot be grown by requests for made-up client ids.
type clientCache struct {
	ttl  time.Duration
	load func(ctx context.Context, id string) (*storage.Client, error)

	mu sync.Mutex
	m  map[string]cachedClient
}

type cachedClient struct {
	c  *storage.Client // shared: read only
	at time.Time
}

func newClientCache(ttl time.Duration, load func(ctx context.Context, id string) (*storage.Client, error)) *clientCache {
	return &clientCache{ttl: ttl, load: load, m: map[string]cachedClient{}}
}

func (cc *clientCache) get(ctx context.Context, id string) (*storage.Client, error) {
	now := time.Now()
	cc.mu.Lock()
	e, ok := cc.m[id]
	cc.mu.Unlock()
	if ok && now.Sub(e.at) < cc.ttl {
		return e.c, nil
	}
	c, err := cc.load(ctx, id)
	if err != nil {
		return nil, err
	}
	cc.mu.Lock()
	cc.m[id] = cachedClient{c: c, at: now}
	cc.mu.Unlock()
	return c, nil
}
