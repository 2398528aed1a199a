-- Rooms by owner: creating a room counts the owner's rooms (ROOMS_PER_USER).
CREATE INDEX rooms_owner_id ON rooms (owner_id);
