DROP TABLE IF EXISTS sallyport_session_token_exchanges;
