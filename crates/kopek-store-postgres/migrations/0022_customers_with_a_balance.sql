-- Finalizing a batch of drafts reads which of its customers have a balance to apply to
-- them, a thousand customers at a time, in the writer's turn. Most customers have none:
-- an index of only those that do answers from a page or two, where the index of every
-- customer took a descent and a row read for each one asked about. Unique, as ids are,
-- as the index of every customer is.
CREATE UNIQUE INDEX customers_with_a_balance ON customers (id, account_id, livemode)
    WHERE balance <> 0;
