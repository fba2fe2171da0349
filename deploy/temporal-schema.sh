#!/bin/sh
# One-shot: create Temporal's databases and apply the schemas shipped in the admin-tools image.
# Safe to re-run: existing databases are kept and update-schema applies only what is missing.
set -eu
sql() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p 5432 -u "$POSTGRES_USER" "$@"; }
for pair in temporal:temporal temporal_visibility:visibility; do
    db="${pair%%:*}"
    dir="${pair##*:}"
    sql --db "$db" create-database 2>/dev/null || echo "database $db exists"
    sql --db "$db" setup-schema -v 0.0 2>/dev/null || echo "schema of $db already set up"
    sql --db "$db" update-schema -d "/etc/temporal/schema/postgresql/v12/$dir/versioned"
done
