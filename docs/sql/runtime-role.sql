-- The runtime role of the engine: an ordinary login role. It owns the schema objects it
-- migrates, but every domain table has row-level security FORCEd, so it sees only the rows of
-- the tenant named in the transaction-local setting app.tenant_id.
-- Change the password in production.
CREATE ROLE vectis LOGIN PASSWORD 'vectis' NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB;
GRANT ALL ON DATABASE vectis TO vectis;
ALTER DATABASE vectis OWNER TO vectis;
\connect vectis
ALTER SCHEMA public OWNER TO vectis;
