package store

import (
	"context"
	"database/sql"
	"fmt"
)

// TenantLimits bound what one tenant's sandboxes hold (issue 13). Zero is no limit.
// Sandboxes of no tenant (the operator's) are never counted or limited.
type TenantLimits struct {
	// MaxSandboxes is how many sandboxes (rows, in any state) a tenant may have.
	MaxSandboxes int

	// Issue 12 (disk quotas) hooks in here: a MaxDiskBytes field, checked in checkTenant
	// as SUM(the quota column) over the tenant's rows plus the new sandbox's, in the same
	// transaction as the count, so concurrent creates cannot overshoot it either.
}

// LimitError is a tenant limit that refused a write; nothing was written.
type LimitError struct {
	Tenant string
	What   string // "sandboxes"
	Limit  int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("tenant %s has reached its limit of %d %s", e.Tenant, e.Limit, e.What)
}

// checkTenant refuses one more sandbox of tenant when lim says it is full. It runs inside
// the transaction that inserts it.
func checkTenant(ctx context.Context, tx *sql.Tx, tenant string, lim TenantLimits) error {
	if tenant == "" || lim.MaxSandboxes <= 0 {
		return nil
	}
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM sandboxes WHERE tenant = ?", tenant).Scan(&n); err != nil {
		return fmt.Errorf("count sandboxes of tenant %s: %w", tenant, err)
	}
	if n >= lim.MaxSandboxes {
		return &LimitError{Tenant: tenant, What: "sandboxes", Limit: lim.MaxSandboxes}
	}
	return nil
}
