DROP TABLE IF EXISTS import_state;
DROP TABLE IF EXISTS imported_rows;
