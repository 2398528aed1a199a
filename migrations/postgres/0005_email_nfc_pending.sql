-- Addresses stored before e-mails were normalised (NFC) are rewritten once, by the
-- server after this migration (SQL cannot apply NFC); the row marks that pass as due.
CREATE TABLE email_nfc_pending (due INTEGER NOT NULL);
INSERT INTO email_nfc_pending (due) VALUES (1);
