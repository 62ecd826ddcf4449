-- One personal calendar feed per member: the SHA-256 digest of its secret token.
CREATE TABLE calendar_feeds (
    user_id     INTEGER PRIMARY KEY REFERENCES users (id),
    token_hash  BLOB NOT NULL UNIQUE
);
