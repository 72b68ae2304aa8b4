"""Read-only HTTP API over the DuckDB file: heatmap time series, liquidation map, the page."""
