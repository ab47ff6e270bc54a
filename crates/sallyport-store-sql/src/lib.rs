//! The SQL store implementation, shared by the SQLite and PostgreSQL backends through a macro.
