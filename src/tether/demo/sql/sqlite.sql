-- The demo shop's own tables and statements (Tether's tables come from tether.store.sqlite).

-- name: schema
CREATE TABLE IF NOT EXISTS shop_orders (
    id         TEXT PRIMARY KEY,
    customer   TEXT NOT NULL,
    item       TEXT NOT NULL,
    quantity   INTEGER NOT NULL,
    status     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS shop_shipments (
    order_id   TEXT PRIMARY KEY,
    event_id   TEXT NOT NULL
);

-- name: place_order
INSERT INTO shop_orders (id, customer, item, quantity, status)
VALUES (:id, :customer, :item, :quantity, 'placed')

-- name: pay_order
UPDATE shop_orders SET status = 'paid' WHERE id = :id

-- name: ship_order
INSERT OR IGNORE INTO shop_shipments (order_id, event_id) VALUES (:order_id, :event_id)

-- name: outbox_status
-- What the live view shows about the outbox table, read on a connection of its own.
SELECT count(*) FILTER (WHERE state IN ('pending', 'claimed')),
       count(*) FILTER (WHERE state = 'pending' AND last_error IS NOT NULL),
       count(*) FILTER (WHERE state = 'dead'),
       min(created_at) FILTER (WHERE state IN ('pending', 'claimed'))
FROM tether_outbox
