package catalog

import (
	"context"
	"database/sql"
)

// prepared returns the statement for q, prepared once for the catalog's life. Pages
// run the same dozen statements thousands of times (a static export renders every
// rule page), and parsing the SQL cost as much as running it. database/sql prepares
// the statement again on each pooled connection it lands on, and SQLite prepares it
// again itself after a schema change. Only for fixed query texts: every distinct text
// is kept.
func (c *Catalog) prepared(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := c.stmts.Load(q); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if prev, loaded := c.stmts.LoadOrStore(q, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// query runs the fixed read statement q through prepared. A statement that does not
// prepare (a table an older catalog lacks) runs unprepared, so the caller sees the
// error it always saw.
func (c *Catalog) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := c.prepared(ctx, q)
	if err != nil {
		return c.db.QueryContext(ctx, q, args...)
	}
	return st.QueryContext(ctx, args...)
}

// queryRow is query for one row.
func (c *Catalog) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := c.prepared(ctx, q)
	if err != nil {
		return c.db.QueryRowContext(ctx, q, args...)
	}
	return st.QueryRowContext(ctx, args...)
}
