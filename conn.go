package etcdsd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/etcdsd/etcdsd/internal/index"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// probeTimeout bounds a member's Status call when steering, and a TLS handshake when
// checking certificates.
const probeTimeout = 500 * time.Millisecond

// etcdConn is what a watcher needs of etcd. conn implements it over a real client; tests
// wrap one to break it on purpose.
type etcdConn interface {
	index.LeaseReader
	Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error)
	// WatchStream opens a gRPC watch stream of its own (watchStream).
	WatchStream(ctx context.Context) (etcdserverpb.Watch_WatchClient, error)
	// redial replaces the client by a new one, keeping the old one when that fails.
	redial(ctx context.Context) error
	// steer leaves out the members that do not answer and reports whether all of them
	// answer, with the response headers of those that answer and have a leader; restore
	// takes them back.
	steer(ctx context.Context) (allAnswer bool, heard []*etcdserverpb.ResponseHeader)
	restore(ctx context.Context)
	// why says what stops each endpoint when none can be reached (diagnose), or nil.
	why(ctx context.Context) error
	Close() error
}

// conn owns a watcher's etcd client. The client is made before the conn exists and is
// replaced, never unset, so whoever calls the conn (the loop, lease refreshes, the
// verifier) always reaches a client, at worst a closed one that answers with an error.
type conn struct {
	dial    func(context.Context) (*clientv3.Client, error) // makes the client, and each one that replaces it
	reach   func(context.Context) error                     // why no endpoint can be reached (diagnose); nil: unknown
	cli     atomic.Pointer[clientv3.Client]
	all     []string    // the configured endpoints
	avoided atomic.Bool // some of them are left out
}

var _ etcdConn = (*conn)(nil)

// connector returns a watcher's way to connect: a conn over the clients dial makes, which
// asks reach (nil: nobody) why etcd cannot be reached when a request finds no member.
func connector(dial func(context.Context) (*clientv3.Client, error), reach func(context.Context) error) func(context.Context) (etcdConn, error) {
	return func(ctx context.Context) (etcdConn, error) {
		c, err := connect(ctx, dial)
		if err != nil {
			return nil, err
		}
		c.reach = reach
		return c, nil
	}
}

// connect dials a client and returns a conn that owns it.
func connect(ctx context.Context, dial func(context.Context) (*clientv3.Client, error)) (*conn, error) {
	cli, err := dial(ctx)
	if err != nil {
		return nil, err
	}
	c := &conn{dial: dial, all: cli.Endpoints()}
	c.cli.Store(cli)
	return c, nil
}

func (c *conn) client() *clientv3.Client { return c.cli.Load() }

func (c *conn) Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	return c.client().Get(ctx, key, opts...)
}

func (c *conn) TimeToLive(ctx context.Context, id clientv3.LeaseID, opts ...clientv3.LeaseOption) (*clientv3.LeaseTimeToLiveResponse, error) {
	return c.client().TimeToLive(ctx, id, opts...)
}

func (c *conn) redial(ctx context.Context) error {
	cli, err := c.dial(ctx)
	if err != nil {
		return err
	}
	c.cli.Swap(cli).Close()
	c.avoided.Store(false)
	return nil
}

func (c *conn) why(ctx context.Context) error {
	if c.reach == nil {
		return nil
	}
	return c.reach(ctx)
}

// explain adds to an error that says only that no member answered (unreachable) what
// stops each endpoint, and to a refusal for want of credentials what it means.
func explain(ctx context.Context, c etcdConn, err error) error {
	if errors.Is(err, rpctypes.ErrUserEmpty) {
		return fmt.Errorf("%w: etcd has authentication enabled; give the stanza credentials USERNAME PASSWORD", err)
	}
	if !unreachable(err) {
		return err
	}
	if why := c.why(ctx); why != nil {
		return fmt.Errorf("%w (%w)", why, err)
	}
	return err
}

func (c *conn) Close() error {
	return c.client().Close()
}

// steer points the client at the members that answer a Status call, when some do not,
// and reports whether all of them answer.
func (c *conn) steer(ctx context.Context) (bool, []*etcdserverpb.ResponseHeader) {
	cli := c.client()
	answering, heard := probe(ctx, cli, c.all)
	if len(answering) == 0 || len(answering) == len(c.all) {
		return len(answering) == len(c.all), heard
	}
	if c.avoided.Load() && slices.Equal(answering, slices.Sorted(slices.Values(cli.Endpoints()))) {
		return false, heard // steered so already
	}
	log.Warningf("etcd members %v do not answer; using %v", missing(c.all, answering), answering)
	cli.SetEndpoints(answering...)
	c.avoided.Store(true)
	return false, heard
}

// restore gives the client all configured endpoints back once they all answer.
func (c *conn) restore(ctx context.Context) {
	if !c.avoided.Load() {
		return
	}
	cli := c.client()
	if answering, _ := probe(ctx, cli, c.all); len(answering) == len(c.all) {
		log.Infof("etcd members answer again; using all of %v (was %v)", c.all, cli.Endpoints())
		cli.SetEndpoints(c.all...)
		c.avoided.Store(false)
	}
}

// probe returns the endpoints that answer a Status call in time, and the headers of the
// answers of members with a leader. A member that refuses the client's auth token answers
// too: the client is what is stuck then, not the member.
func probe(ctx context.Context, cli *clientv3.Client, endpoints []string) ([]string, []*etcdserverpb.ResponseHeader) {
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		out   []string
		heard []*etcdserverpb.ResponseHeader
	)
	for _, ep := range endpoints {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			st, err := cli.Status(pctx, ep)
			if err != nil && !errors.Is(err, rpctypes.ErrInvalidAuthToken) {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			out = append(out, ep)
			if err == nil && st.Leader != 0 {
				heard = append(heard, st.Header)
			}
		})
	}
	wg.Wait()
	slices.Sort(out)
	return out, heard
}

func missing(all, some []string) []string {
	var out []string
	for _, e := range all {
		if !slices.Contains(some, e) {
			out = append(out, e)
		}
	}
	return out
}

// definitive reports whether err will stay until someone changes etcd's users, roles or
// certificates, or the Corefile: retrying soon cannot help, and CoreDNS need not wait for
// it at start-up.
func definitive(err error) bool {
	var each endpointErrors
	if errors.As(err, &each) {
		// Until every endpoint's cause is one of these, one may yet come up.
		return !slices.ContainsFunc(each, func(err error) bool { return !definitive(err) })
	}
	var verify *tls.CertificateVerificationError
	return errors.Is(err, rpctypes.ErrAuthFailed) || errors.Is(err, rpctypes.ErrUserEmpty) ||
		errors.Is(err, rpctypes.ErrPermissionDenied) ||
		errors.As(err, &verify) ||
		errors.Is(err, errNotTLS) || errors.Is(err, errTLS) || errors.Is(err, errClientCert)
}
