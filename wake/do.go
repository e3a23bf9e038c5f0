package wake

import (
	"context"
	"errors"
	"net/netip"
)

// Waking is what Do wakes through: a *Waker, or a caller's interface of one.
type Waking interface {
	Wake(ctx context.Context, id string, port int) (netip.AddrPort, error)
}

// Do wakes sandbox id (port 0: just running) and runs op on it. When op fails with an
// error that wraps again (lifecycle.ErrNotRunning: the container died since the wake, a
// kill 1 inside, an OOM kill, and the sandbox's state is settled), the sandbox is woken
// once more, the way a preview wakes it, and op runs a second time (issue 11). op must
// answer such an error before it has done anything it cannot do twice.
func Do(ctx context.Context, w Waking, id string, again error, op func() error) error {
	if _, err := w.Wake(ctx, id, 0); err != nil {
		return err
	}
	err := op()
	if err == nil || !errors.Is(err, again) {
		return err
	}
	if _, err := w.Wake(ctx, id, 0); err != nil {
		return err
	}
	return op()
}
