#!/usr/bin/env bash
# Start the machine's PostgreSQL (Debian's package) and create the role the tests use.
# Prints the URL to export as REFUNDS_TEST_POSTGRES_URL.
set -euo pipefail
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
cluster=$(pg_lsclusters --no-header | awk -v v="$version" '$1 == v {print $2; exit}')
if [ -z "$cluster" ]; then
    pg_createcluster "$version" main >/dev/null
    cluster=main
fi
pg_ctlcluster "$version" "$cluster" start >/dev/null 2>&1 || true
for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 >/dev/null 2>&1 && break
    sleep 1
done
su postgres -c "psql -q -tc \"SELECT 1 FROM pg_roles WHERE rolname = 'refunds'\"" | grep -q 1 ||
    su postgres -c "psql -q -c \"CREATE ROLE refunds LOGIN SUPERUSER PASSWORD 'refunds'\""
echo "postgresql+psycopg://refunds:refunds@127.0.0.1:5432/postgres"
