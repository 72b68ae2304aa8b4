"""Binance public data archive: layout of a local mirror, strict file readers, the downloader."""
