-- ironflow for Effect (additive): the version of the event Schema an event
-- was written with. Events of older versions are upcast when loaded.
ALTER TABLE ironflow.events ADD COLUMN event_version integer NOT NULL DEFAULT 1;
