"""Observed (realized) liquidations: strict readers of CoinGlass exports and Binance archive
liquidationSnapshot files, and the SQL that checks the stored rows."""
