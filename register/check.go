package register

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

// A Check tells whether the registered service is healthy: nil when it is. It must return
// when ctx ends (Options.CheckTimeout).
type Check func(ctx context.Context) error

// Defaults of the check options, as Consul's and Kubernetes' probes have them.
const (
	DefaultCheckInterval = 10 * time.Second
	DefaultCheckTimeout  = 2 * time.Second
	DefaultCheckFailures = 3
)

// HTTPCheck passes when a GET of url answers with a 2xx or 3xx status, as Consul's HTTP
// check does. Redirects are not followed.
func HTTPCheck(url string) Check {
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 399 {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// TCPCheck passes when a TCP connection to addr (host:port) opens.
func TCPCheck(addr string) Check {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// ExecCheck passes when the shell command cmd (run with sh -c) exits 0. The start of its
// output says why it failed. The command runs in a process group of its own (on Unix),
// killed whole when the command ends or times out, so that a check leaves no process
// behind, even one it started in the background.
func ExecCheck(cmd string) Check {
	return func(ctx context.Context) error {
		// The output goes to a file, not a pipe, which a process left in the background
		// would hold open.
		out, err := os.CreateTemp("", "etcdsd-check-")
		if err != nil {
			return err
		}
		defer os.Remove(out.Name())
		defer out.Close()
		c := exec.CommandContext(ctx, "sh", "-c", cmd)
		c.Stdout, c.Stderr = out, out
		killGroup(c)
		err = c.Run()
		if c.Process != nil {
			c.Cancel() // the rest of the group
		}
		if err == nil {
			return nil
		}
		head := make([]byte, 200)
		n, _ := out.ReadAt(head, 0)
		if msg := strings.TrimSpace(string(head[:n])); msg != "" {
			return fmt.Errorf("%s: %w: %s", cmd, err, msg)
		}
		return fmt.Errorf("%s: %w", cmd, err)
	}
}

// errCheckTimeout is a check that did not finish within its timeout.
var errCheckTimeout = errors.New("check timed out")

// runCheck runs c once within timeout.
func runCheck(ctx context.Context, c Check, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := c(ctx)
	if err != nil && ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("%w after %v: %v", errCheckTimeout, timeout, err)
	}
	return err
}
