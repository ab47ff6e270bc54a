DROP TABLE IF EXISTS import_state;
