-- ironflow for Effect (additive): handler timeouts. Attempts of an effect that
-- ran past their handler's timeout, counted apart from the other failed
-- attempts (they are also counted in `attempts`), for `ironflow stats`.
ALTER TABLE ironflow.outbox ADD COLUMN timed_out_attempts integer NOT NULL DEFAULT 0;
