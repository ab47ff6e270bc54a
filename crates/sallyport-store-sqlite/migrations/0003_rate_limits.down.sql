DROP TABLE IF EXISTS sallyport_rate_limits;
