"""Raw-data ingest: archive files -> candles, open_interest, mark_price_candles, plus checks."""
