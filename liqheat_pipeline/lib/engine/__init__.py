"""The liquidation model: Binance liquidation maths, dated margin brackets, the model
configuration and the vectorised time-evolving engine with its carried state (see docs/model.md).

Pure numpy/pandas; no Dagster imports.
"""
