ALTER TABLE selfservice_flows DROP COLUMN code_submit_count;
DROP TABLE IF EXISTS identity_one_time_codes;
DROP TABLE IF EXISTS courier_message_dispatches;
DROP TABLE IF EXISTS courier_messages;
