-- Runs once, when the PostgreSQL volume is created: the system of record's own database.
CREATE ROLE refunds LOGIN PASSWORD 'refunds';
CREATE DATABASE refunds OWNER refunds;
