-- A table to watch; runs once, when the PostgreSQL volume is created.
CREATE TABLE orders (id bigserial PRIMARY KEY, status text NOT NULL DEFAULT 'new', total numeric(10,2), created_at timestamptz DEFAULT now());
