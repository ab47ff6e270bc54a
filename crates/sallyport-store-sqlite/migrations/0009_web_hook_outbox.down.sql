DROP TABLE sallyport_web_hook_outbox;
