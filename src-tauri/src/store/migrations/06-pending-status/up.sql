-- Deliveries may now be 'pending': journaled and acknowledged, not projected yet. SQLite cannot
-- alter a CHECK constraint, and rebuilding the journal (six tables reference it) would copy
-- every body: the hook `widen_status_check` in `store/connection.rs` loosens the constraint in
-- place, the procedure SQLite documents for that (sqlite.org/lang_altertable.html, section 7).
SELECT 1;
