package testutil

import (
	"database/sql"
	"fmt"
	"testing"
)

// RowsMentioning counts, in every table of db but the audit log and the migrations, the
// rows where a column equals one of values, by "table.column": what a purge must bring to
// nothing. Tables that later issues add are covered without a change.
func RowsMentioning(tb testing.TB, db *sql.DB, values ...string) map[string]int {
	tb.Helper()
	query := func(q string, args ...any) []string {
		rows, err := db.Query(q, args...)
		if err != nil {
			tb.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				tb.Fatal(err)
			}
			out = append(out, s)
		}
		if err := rows.Err(); err != nil {
			tb.Fatal(err)
		}
		return out
	}
	found := map[string]int{}
	for _, table := range query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('audit_log', 'schema_migrations') AND name NOT LIKE 'sqlite_%'") {
		for _, col := range query("SELECT name FROM pragma_table_info(?)", table) {
			for _, v := range values {
				var n int
				if err := db.QueryRow(fmt.Sprintf("SELECT count(*) FROM %q WHERE %q = ?", table, col), v).Scan(&n); err != nil {
					tb.Fatal(err)
				}
				if n > 0 {
					found[table+"."+col] += n
				}
			}
		}
	}
	return found
}
