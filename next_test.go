package etcdsd

import (
	"errors"
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestAfterError maps what etcd answers a watch, as the client hands it over, to the
// loop's next step.
func TestAfterError(t *testing.T) {
	for _, tc := range []struct {
		err    error
		step   step
		reason string
	}{
		{rpctypes.ErrCompacted, stepListLater, listCompacted},
		{fmt.Errorf("reading: %w", rpctypes.ErrCompacted), stepListLater, listCompacted},
		{rpctypes.Error(status.Error(codes.OutOfRange, "etcdserver: mvcc: required revision has been compacted")), stepListLater, listCompacted},
		{rpctypes.ErrInvalidAuthToken, stepRedial, ""},
		{rpctypes.Error(status.Error(codes.Unauthenticated, "etcdserver: invalid auth token")), stepRedial, ""},
		{rpctypes.ErrPermissionDenied, stepList, listPermission},
		{rpctypes.ErrNoLeader, stepRetry, ""},
		{errWatchClosed, stepRetry, ""},
		{errors.New("rpc error: code = Unavailable"), stepRetry, ""},
	} {
		n := afterError(tc.err)
		if n.step != tc.step || n.reason != tc.reason || n.err != tc.err {
			t.Errorf("%v: step %v reason %q err %v, want step %v reason %q", tc.err, n.step, n.reason, n.err, tc.step, tc.reason)
		}
	}
}
