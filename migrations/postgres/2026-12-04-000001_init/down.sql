DROP TABLE outbox;
DROP TABLE key_pairs;
DROP TABLE codes;
DROP TABLE sessions;
DROP TABLE emails;
DROP TABLE users;
